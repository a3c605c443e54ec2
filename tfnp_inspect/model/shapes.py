"""The shape contract's evidence: what each op returned, per output, in bounded memory.

Per op (call site, mode and the static shapes TF knows) and per input and output position, a
:class:`PositionShapes` folds every call into the most specific shape consistent with all of
them (``[224, 224, 3]``, or ``[None, 3]`` when the first dimension varied; None when the rank
varied), plus the first :data:`MAX_DISTINCT_SHAPES` distinct shapes with their counts. Recorders
fold their rows into these before the ring buffer evicts them, so the figures count every call.

:func:`signature` is the one-line summary every view shows, and :func:`more_specific` says where
the static shape knows less than what every call returned (the ``unknown-shape`` hint).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, cast

from .columns import RowColumns
from .records import A_DTYPE, A_SHAPE, C_ERROR, C_RAW_INPUTS, C_RAW_OUTPUTS, C_SEQ, CallSite, dtype_name

#: One shape as the model knows it: a dimension per axis, None where it is unknown or varied.
Dims = tuple[int | None, ...]
#: ``CallSite.static_shapes``: per output, the dims TF knows statically (None: unknown rank).
StaticShapes = tuple[Dims | None, ...] | None

#: Distinct shapes counted per position; later ones only refine the merged shape.
MAX_DISTINCT_SHAPES = 8
#: Distinct dtype names kept per position (one, unless the function returns different ones).
MAX_DTYPES = 4
#: Calls whose outputs must agree before a shape is suggested (the ``unknown-shape`` hint).
AGREEING_CALLS = 3
#: Ops (call site, mode, static shapes) tracked per recorder; calls of further ones are not.
MAX_SITES = 10_000
#: Distinct combinations of input and output shapes per op counted on the fast path.
MAX_SIGNATURES = 64

S_FUNC_NAME = CallSite._fields.index("func_name")
S_MODE = CallSite._fields.index("mode")
S_CALL_SITE = CallSite._fields.index("call_site")
S_ORIGIN = CallSite._fields.index("origin")
S_STATIC_SHAPES = CallSite._fields.index("static_shapes")

_STRING_DTYPE = re.compile(r"^(object|[|<>=]?[SUO]\d*|bytes\d*|str\d*)$")


def tf_dtype_label(name: str) -> str:
    """``string`` for numpy's object, bytes and str dtypes (how ``tf.string`` reaches numpy)."""
    return "string" if _STRING_DTYPE.match(name) else name


def dims_text(dims: Dims | None, spaced: bool = False) -> str:
    """``[224,224,3]`` (``[224, 224, 3]`` when ``spaced``, as Python code reads), ``[None,3]``;
    ``[...]`` for an unknown rank."""
    if dims is None:
        return "[...]"
    separator = ", " if spaced else ","
    return "[" + separator.join("None" if d is None else str(d) for d in dims) + "]"


@dataclass(slots=True)
class PositionShapes:
    """Every shape one input or output position of one op had, folded."""

    #: The most specific shape consistent with every call (None: no call yet, or rank varied).
    dims: Dims | None = None
    rank_varies: bool = False
    seen: int = 0
    #: The first distinct shapes and how many calls had each.
    distinct: dict[tuple[int, ...], int] = field(default_factory=dict[tuple[int, ...], int])
    #: Calls whose shape was not among ``distinct`` once it was full.
    others: int = 0
    dtypes: list[str] = field(default_factory=list[str])

    def add(self, shape: tuple[int, ...], dtype: Any) -> bool:
        """Fold one call's shape; True when the merged shape changed."""
        self.seen += 1
        name = dtype_name(dtype)
        if name not in self.dtypes and len(self.dtypes) < MAX_DTYPES:
            self.dtypes.append(name)
        known = self.distinct.get(shape)
        if known is not None:
            self.distinct[shape] = known + 1
            return False  # merged already
        if len(self.distinct) < MAX_DISTINCT_SHAPES:
            self.distinct[shape] = 1
        else:
            self.others += 1
        return self._refine(tuple(shape), self.seen == 1)

    def _refine(self, shape: Dims | None, first: bool) -> bool:
        if self.rank_varies:
            return False
        dims = self.dims
        if first:
            self.dims = shape
            return True
        if dims is None or shape is None or len(dims) != len(shape):
            self.dims, self.rank_varies = None, True
            return True
        merged = tuple(d if d == s else None for d, s in zip(dims, shape, strict=True))
        if merged != dims:
            self.dims = merged
            return True
        return False

    def merge(self, other: PositionShapes) -> None:
        if not other.seen:
            return
        first = not self.seen
        if other.rank_varies:
            self.dims, self.rank_varies = None, True
        else:
            self._refine(other.dims, first)
        self.seen += other.seen
        for shape, n in other.distinct.items():
            if shape in self.distinct:
                self.distinct[shape] += n
            elif len(self.distinct) < MAX_DISTINCT_SHAPES:
                self.distinct[shape] = n
            else:
                self.others += n
        self.others += other.others
        for name in other.dtypes:
            if name not in self.dtypes and len(self.dtypes) < MAX_DTYPES:
                self.dtypes.append(name)

    @property
    def label(self) -> str:
        """``uint8[224,224,3]``: dtype(s) and the merged shape."""
        dtype = "|".join(tf_dtype_label(name) for name in self.dtypes) or "?"
        return f"{dtype}{dims_text(self.dims)}"

    def copy(self) -> PositionShapes:
        return PositionShapes(
            self.dims, self.rank_varies, self.seen, dict(self.distinct), self.others, list(self.dtypes),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dims": None if self.dims is None else list(self.dims),
            "rank_varies": self.rank_varies,
            "seen": self.seen,
            "distinct": [[list(shape), n] for shape, n in self.distinct.items()],
            "others": self.others,
            "dtypes": list(self.dtypes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PositionShapes:
        dims = data["dims"]
        distinct = cast("list[tuple[Sequence[int], int]]", data["distinct"])
        return cls(
            dims=None if dims is None else tuple(None if d is None else int(d) for d in dims),
            rank_varies=bool(data["rank_varies"]),
            seen=int(data["seen"]),
            distinct={tuple(int(d) for d in shape): int(n) for shape, n in distinct},
            others=int(data["others"]),
            dtypes=[str(name) for name in data["dtypes"]],
        )


#: Batches of at least this many rows try :meth:`SiteShapes._count_repeats` first.
_BATCH_ROWS = 16
_SHAPE, _DTYPE = itemgetter(A_SHAPE), itemgetter(A_DTYPE)


@dataclass(slots=True)
class SiteShapes:
    """The shapes of one op's calls: per input and output position, with the static shapes."""

    func_name: str
    call_site: str | None
    mode: str
    origin: str
    static_shapes: StaticShapes
    calls: int = 0
    errors: int = 0
    inputs: list[PositionShapes] = field(default_factory=list[PositionShapes])
    outputs: list[PositionShapes] = field(default_factory=list[PositionShapes])
    #: Calls returned different numbers of outputs (TF refuses that in graph mode).
    output_count_varies: bool = False
    first_seq: int = 0
    last_seq: int = 0
    #: The call from which the current suggestion holds: the AGREEING_CALLS-th successful call,
    #: or a later one that changed the merged output shapes (0: not enough calls yet).
    settled_seq: int = 0
    #: (input count, every array's shape) -> [their dtypes, calls not yet added to the positions]:
    #: a call shaped like an earlier one only counts here (see :meth:`add_rows`)
    _repeats: dict[tuple[Any, ...], list[Any]] = field(
        default_factory=dict[tuple[Any, ...], list[Any]], repr=False, compare=False,
    )

    @classmethod
    def for_site(cls, site: Sequence[Any]) -> SiteShapes:
        """An empty aggregate for the op a stored row's site tuple describes."""
        return cls(
            site[S_FUNC_NAME], site[S_CALL_SITE], site[S_MODE], site[S_ORIGIN], site[S_STATIC_SHAPES],
        )

    @property
    def key(self) -> tuple[Any, ...]:
        return site_key(self.func_name, self.call_site, self.mode, self.origin, self.static_shapes)

    def add(self, seq: int, raw_inputs: Sequence[Sequence[Any]], raw_outputs: Sequence[Sequence[Any]],
            failed: bool) -> None:
        """Fold one stored call (its RawArray rows)."""
        self.calls += 1
        if not self.first_seq:
            self.first_seq = seq
        self.last_seq = seq
        inputs = self.inputs
        for index, raw in enumerate(raw_inputs):
            if index == len(inputs):
                inputs.append(PositionShapes())
            inputs[index].add(raw[A_SHAPE], raw[A_DTYPE])
        if failed:
            self.errors += 1
            return
        outputs = self.outputs
        succeeded = self.calls - self.errors
        if len(raw_outputs) != len(outputs) and succeeded > 1:
            self.output_count_varies = True
        changed = False
        for index, raw in enumerate(raw_outputs):
            if index == len(outputs):
                outputs.append(PositionShapes())
            changed = outputs[index].add(raw[A_SHAPE], raw[A_DTYPE]) or changed
        if succeeded == AGREEING_CALLS or (changed and succeeded > AGREEING_CALLS):
            self.settled_seq = seq

    def add_rows(self, rows: Sequence[Sequence[Any]], columns: RowColumns) -> None:
        """Fold stored rows (``CallRow`` order) of this op, and their columns.

        A call whose arrays have the shapes and dtypes of an earlier call changes nothing but
        counts, so it is only counted (its shapes and dtypes read by ``zip``, without a Python
        loop over the arrays); :meth:`flush` adds those counts to the positions.
        """
        if columns.uniform and len(rows) >= _BATCH_ROWS and self._count_repeats(rows):
            return
        repeats = self._repeats
        known_key = repeats.get
        inputs_at, outputs_at, error_at, seq_at = C_RAW_INPUTS, C_RAW_OUTPUTS, C_ERROR, C_SEQ
        calls = self.calls
        for row in rows:
            raw_inputs, raw_outputs = row[inputs_at], row[outputs_at]
            key: tuple[Any, ...] | None = None
            dtypes: tuple[Any, ...] | None = None
            if row[error_at] is None:
                # RawArray rows all have one length; strict= would triple the cost of this line
                fields = zip(*(raw_inputs + raw_outputs))  # noqa: B905
                shapes = next(fields, None)
                if shapes is not None:
                    key, dtypes = (len(raw_inputs), shapes), next(fields)
                    known = known_key(key)
                    if known is not None and known[0] == dtypes:
                        known[1] += 1
                        calls += 1
                        if calls - self.errors == AGREEING_CALLS:
                            self.settled_seq = row[seq_at]
                        continue
            self.calls = calls
            self.add(row[seq_at], raw_inputs, raw_outputs, row[error_at] is not None)
            calls = self.calls
            if key is not None and key not in repeats and len(repeats) < MAX_SIGNATURES:
                repeats[key] = [dtypes, 0]
        self.calls = calls
        if rows:
            self.last_seq = rows[-1][seq_at]

    def _count_repeats(self, rows: Sequence[Sequence[Any]]) -> bool:
        """The steady state, without a Python loop over the rows: a batch whose rows are alike
        (``RowColumns.uniform``), shaped like an earlier call. Counts them and says True; says
        False (and changes nothing) otherwise."""
        repeats = self._repeats
        first = rows[0]
        arrays = first[C_RAW_INPUTS] + first[C_RAW_OUTPUTS]
        if not repeats or not arrays:
            return False
        known = repeats.get((len(first[C_RAW_INPUTS]), tuple(map(_SHAPE, arrays))))
        if known is None or known[0] != tuple(map(_DTYPE, arrays)):
            return False
        total = len(rows)
        known[1] += total
        succeeded = self.calls - self.errors
        if succeeded < AGREEING_CALLS <= succeeded + total:
            self.settled_seq = rows[AGREEING_CALLS - succeeded - 1][C_SEQ]
        self.calls += total
        self.last_seq = rows[-1][C_SEQ]
        return True

    def flush(self) -> None:
        """Add the calls :meth:`add_rows` only counted to the positions' counts."""
        for key, known in self._repeats.items():
            inputs: int = key[0]
            shapes: tuple[tuple[int, ...], ...] = key[1]
            count: int = known[1]
            if not count:
                continue
            known[1] = 0
            for index, shape in enumerate(shapes):
                position = self.inputs[index] if index < inputs else self.outputs[index - inputs]
                position.seen += count
                if shape in position.distinct:
                    position.distinct[shape] += count
                else:
                    position.others += count

    def merge(self, other: SiteShapes) -> None:
        """Add another aggregate of the same op (another file of a merged trace)."""
        self.flush()
        other.flush()
        self.calls += other.calls
        self.errors += other.errors
        self.output_count_varies = self.output_count_varies or other.output_count_varies
        for mine, theirs in ((self.inputs, other.inputs), (self.outputs, other.outputs)):
            for index, position in enumerate(theirs):
                if index == len(mine):
                    mine.append(PositionShapes())
                mine[index].merge(position)
        self.first_seq = min(filter(None, (self.first_seq, other.first_seq)), default=0)
        self.last_seq = max(self.last_seq, other.last_seq)
        self.settled_seq = max(self.settled_seq, other.settled_seq)

    def static_output(self, index: int) -> Dims | None:
        """The static shape TF knows for output ``index`` (None: unknown rank)."""
        static = self.static_shapes
        return static[index] if static is not None and index < len(static) else None

    def copy(self) -> SiteShapes:
        self.flush()
        return SiteShapes(
            self.func_name, self.call_site, self.mode, self.origin, self.static_shapes, self.calls,
            self.errors, [p.copy() for p in self.inputs], [p.copy() for p in self.outputs],
            self.output_count_varies, self.first_seq, self.last_seq, self.settled_seq,
        )

    def to_dict(self) -> dict[str, Any]:
        self.flush()
        return {
            "func_name": self.func_name,
            "call_site": self.call_site,
            "mode": self.mode,
            "origin": self.origin,
            "static_shapes": _static_json(self.static_shapes),
            "calls": self.calls,
            "errors": self.errors,
            "inputs": [p.to_dict() for p in self.inputs],
            "outputs": [p.to_dict() for p in self.outputs],
            "output_count_varies": self.output_count_varies,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "settled_seq": self.settled_seq,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SiteShapes:
        call_site = data["call_site"]
        return cls(
            func_name=str(data["func_name"]),
            call_site=None if call_site is None else str(call_site),
            mode=str(data["mode"]),
            origin=str(data["origin"]),
            static_shapes=static_from_json(data["static_shapes"]),
            calls=int(data["calls"]),
            errors=int(data["errors"]),
            inputs=[PositionShapes.from_dict(p) for p in data["inputs"]],
            outputs=[PositionShapes.from_dict(p) for p in data["outputs"]],
            output_count_varies=bool(data["output_count_varies"]),
            first_seq=int(data["first_seq"]),
            last_seq=int(data["last_seq"]),
            settled_seq=int(data["settled_seq"]),
        )


def site_key(func_name: str, call_site: str | None, mode: str, origin: str, static: StaticShapes) -> tuple[Any, ...]:
    """What tells two ops apart for the shape contract (ops of one call site built into several
    graphs with the same static shapes share one aggregate)."""
    return (func_name, call_site, mode, origin, static)


def _static_json(static: StaticShapes) -> list[list[int | None] | None] | None:
    if static is None:
        return None
    return [None if dims is None else list(dims) for dims in static]


def static_from_json(value: Any) -> StaticShapes:
    """Static shapes as a trace file writes them (lists, null for unknown) back to tuples."""
    if value is None:
        return None
    per_output = cast("list[list[int | None] | None]", value)
    return tuple(
        None if dims is None else tuple(None if d is None else int(d) for d in dims) for dims in per_output
    )


class ShapeFolder:
    """Folds stored rows into per-op :class:`SiteShapes` (a recorder's, under its lock).

    Rows of one op share their site tuple, so the aggregate is found by the tuple's identity
    first (the site tuple is kept alive here, so its id stays unique), by its key otherwise.
    """

    __slots__ = ("_by_site", "by_key")

    def __init__(self) -> None:
        self.by_key: dict[tuple[Any, ...], SiteShapes] = {}
        self._by_site: dict[int, tuple[Sequence[Any], SiteShapes]] = {}

    def add_rows(self, site: Sequence[Any], rows: Sequence[Sequence[Any]], columns: RowColumns) -> None:
        """Fold stored rows of the op ``site`` describes (their site tuple), and their columns."""
        cached = self._by_site.get(id(site))
        if cached is not None and cached[0] is site:
            aggregate = cached[1]
        else:
            aggregate = self._aggregate(site)
            if aggregate is None:
                return
        aggregate.add_rows(rows, columns)

    def _aggregate(self, site: Sequence[Any]) -> SiteShapes | None:
        key = site_key(site[S_FUNC_NAME], site[S_CALL_SITE], site[S_MODE], site[S_ORIGIN], site[S_STATIC_SHAPES])
        aggregate = self.by_key.get(key)
        if aggregate is None:
            if len(self.by_key) >= MAX_SITES:
                return None
            aggregate = self.by_key[key] = SiteShapes.for_site(site)
        if len(self._by_site) >= MAX_SITES:
            self._by_site.clear()  # only a shortcut: rebuilt from the keys
        self._by_site[id(site)] = (site, aggregate)
        return aggregate

    def update(self, aggregates: Iterable[SiteShapes]) -> None:
        """Add aggregates read from a file (merging those of the same op)."""
        for aggregate in aggregates:
            known = self.by_key.get(aggregate.key)
            if known is None:
                self.by_key[aggregate.key] = aggregate.copy()
            else:
                known.merge(aggregate)

    def snapshot(self) -> list[SiteShapes]:
        return [aggregate.copy() for aggregate in self.by_key.values()]

    def clear(self) -> None:
        self.by_key.clear()
        self._by_site.clear()


def more_specific(static: Dims | None, observed: PositionShapes) -> bool:
    """Whether every call returned a shape more specific than what TF knows statically: an
    unknown rank where the rank never varied, or an unknown dimension that never varied."""
    dims = observed.dims
    if observed.rank_varies or dims is None or not observed.seen:
        return False
    if static is None:
        return True
    if len(static) != len(dims):
        return False  # incompatible: the shape-mismatch check's business
    return any(s is None and d is not None for s, d in zip(static, dims, strict=True))


def suggested_dims(static: Dims | None, observed: PositionShapes) -> Dims | None:
    """The shape to declare: what every call returned, where the static shape knows less."""
    dims = observed.dims
    if dims is None:
        return None
    if static is None or len(static) != len(dims):
        return dims
    return tuple(s if s is not None else d for s, d in zip(static, dims, strict=True))


def signature(site: SiteShapes) -> str:
    """``load_image(string[]) -> uint8[224,224,3], int64[]  (5,000 calls)``: how every view names
    an op's contract, with the dimensions that varied as None."""
    inputs = ", ".join(p.label for p in site.inputs)
    outputs = ", ".join(p.label for p in site.outputs) or "()"
    if site.output_count_varies:
        outputs += " (the number of outputs varied)"
    calls = f"{site.calls:,} call" + ("" if site.calls == 1 else "s")
    if site.errors:
        calls += f", {site.errors:,} raised"
    return f"{site.func_name}({inputs}) -> {outputs}  ({calls})"


def static_text(site: SiteShapes) -> str:
    """What TF knows statically about the outputs, as ``dtype``-less shapes (``?`` unknown)."""
    if not site.outputs:
        return "–"
    if site.static_shapes is None:
        return ", ".join("?" for _ in site.outputs)
    return ", ".join(
        "?" if site.static_output(i) is None else dims_text(site.static_output(i)) for i in range(len(site.outputs))
    )


__all__ = [
    "AGREEING_CALLS", "MAX_DISTINCT_SHAPES", "Dims", "PositionShapes", "ShapeFolder", "SiteShapes",
    "StaticShapes", "dims_text", "more_specific", "signature", "site_key", "static_from_json", "static_text",
    "suggested_dims", "tf_dtype_label",
]
