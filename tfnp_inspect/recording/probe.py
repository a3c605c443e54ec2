"""The probe: per-op state of the checks, and the per-call work (the hot path).

TensorFlow reaches :meth:`CallProbe.call` through the registry hook (graph mode) or the eager
wrapper (see :mod:`.wrapper`); the probe calls what TF would have called with exactly the
arguments TF gave and returns (or raises) exactly what came back, so TF's own conversions,
checks and error mapping stay as they are. The only addition to the user's program is a
:class:`~tfnp_inspect.ViolationError` in strict mode.

A bare call costs about 32 us here and the default mode may add 10%, so the per-call path
avoids numpy reductions and allocations.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from sys import getrefcount
from typing import Any, NamedTuple

import numpy as np
import xxhash

from ..checks import messages
from ..checks.determinism import DeterminismMemory
from ..checks.hidden_state import StateWatch
from ..checks.switches import switches
from ..checks.tout import ToutSpec
from ..model import records
from ..model.fingerprints import (
    SAMPLE_BLOCK_BYTES,
    SAMPLE_BLOCKS,
    SAMPLE_WINDOW_BYTES,
    SAMPLED_MIN_BYTES,
    alias_root,
    fingerprint,
    sampled_fingerprint,
    xxh3_function_address,
)
from ..model.records import (
    A_DTYPE,
    A_FINGERPRINT,
    A_FLAGS,
    A_NBYTES,
    A_SHAPE,
    A_WILL_BE_COPIED,
    FLAG_BUFFER_HASH,
    FLAG_C_CONTIGUOUS,
    FLAG_SAMPLED,
    FLAG_SHARES_TENSOR,
    CallSite,
    ErrorInfo,
    Hint,
    Invocation,
    Violation,
)
from . import active, core
from .arrays import (
    COPY_HINT_MIN_BYTES,
    MAX_CAPTURE_ARRAY_BYTES,
    SAMPLE_ELEMENTS,
    UNHASHED_FROM_BYTES,
    capture_copy,
    describe,
    tf_wraps_without_copy,
)

_ndarray = np.ndarray
_xxh3: Callable[[Any], int] = xxhash.xxh3_64_intdigest
_perf_ns = time.perf_counter_ns
_get_ident = threading.get_ident
_seq = itertools.count(1)
#: Converts perf_counter_ns readings to wall-clock ns (for exports merged across processes).
_WALL_OFFSET_NS = time.time_ns() - time.perf_counter_ns()

#: Stateful functions are watched for hidden state during their first calls only: after this
#: many pure calls the inspector suggests ``stateful=False`` and stops paying for the watch.
STATELESS_EVIDENCE_CALLS = 100
#: byte_checks='sampled': every op's first FULL_CHECK_CALLS calls, and one in FULL_CHECK_EVERY
#: after that, hash large arrays whole; the others sample them (model.fingerprints).
FULL_CHECK_CALLS = 8
FULL_CHECK_EVERY = 16

#: What a call site is: where TF calls it from decides which checks apply.
ORIGIN_DECLARED = "wrapper"  # an op whose declaration (stateful, Tout, call site) is known
ORIGIN_UNDECLARED = "registry"  # an op built before tfnp_inspect was imported: no declaration
ORIGIN_GENERATOR = "generator"  # Dataset.from_generator: TF's plumbing around the user's generator


#: threading's table of the threads it knows, by ident (what current_thread() reads first): the
#: compiled core looks the calling thread up there without a Python frame (empty where a Python
#: lacks it: then it calls _thread_name).
_THREADS: dict[int, threading.Thread] = vars(threading).get("_active", {})


def _thread_name() -> str:
    """The calling thread's name, read at every call. TF calls from its own threads under a
    Python thread state made for that one call, so a per-thread cache (a ``threading.local``,
    the thread state's dict) would miss every time, and the miss cost 2 us a call."""
    return threading.current_thread().name


def safe_text(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when the user's ``__str__`` raises (never our error)."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - the user's __str__ may raise anything
        return f"<{type(exc).__name__} whose str() raised>"


def _error_info(exc: BaseException) -> ErrorInfo:
    try:
        text = "".join(traceback.format_exception(exc))
    except Exception:  # noqa: BLE001 - formatting calls the user's __str__ too
        text = ""
    return ErrorInfo(type(exc).__name__, safe_text(exc), text)


class FastPath(NamedTuple):
    """What the compiled core reads on each call, decided once per plan by ``_configure``.

    One attribute read instead of a dozen; None while a call needs the reference path (first
    call under a plan, 'full' capture, a watch not analysed yet). The C core checks at import
    that it was built for these fields, in this order.
    """

    plan: Any
    switches_version: int
    every_byte: bool
    capture: int
    retained: bool
    mutation: bool
    tout_check: bool
    tout_single: Any
    shape_check: bool
    static_shapes: Any
    nondeterminism: bool
    graph: bool
    generator: bool
    hash_outputs: bool
    exact_sinks: tuple
    fitted_sinks: tuple
    calls: list[int]  # CallProbe._calls
    site_row: tuple[Any, ...]
    watch: StateWatch | None  # hidden state, or purity evidence, to look at around each call


class CallProbe:
    """Per-op state of the checks: what ``func`` can reach, what it returned before."""

    __slots__ = (
        "__weakref__",
        "_calls",
        "_capture",
        "_fast",
        "_gathering",
        "_hash_outputs",
        "_hidden",
        "_kept_outputs",
        "_mutation",
        "_nondeterminism",
        "_plan",
        "_retained",
        "_shape_check",
        "_static_resolved",
        "_switches_version",
        "_tout_check",
        "_tout_single",
        "_watch",
        "impure",
        "memory",
        "outputs",
        "pure_calls",
        "site",
        "site_row",
        "tout",
    )

    def __init__(self, site: CallSite, tout: ToutSpec | None) -> None:
        self.set_site(site)
        self.tout = tout
        self._watch: StateWatch | None = None
        self.memory = DeterminismMemory() if site.stateful is False else None
        self._plan: active.Plan | None = None
        self._fast: FastPath | None = None
        self._switches_version = -1
        self.pure_calls = 0
        self.impure = False
        #: still watching a stateful function for evidence that it could be stateless
        #: (never a generator: its state is its purpose)
        self._gathering = bool(site.stateful) and site.origin == ORIGIN_DECLARED
        #: returned arrays still held elsewhere after the previous call:
        #: (weak reference, fingerprint, seq, output index, data address)
        self._kept_outputs: list[tuple[Any, int, int, int, int]] = []
        #: calls so far, in a list both cores update in place: decides which calls hash large
        #: arrays whole (byte_checks='sampled')
        self._calls = [0]
        #: the op's output tensors, weakly (set when the op is declared): their static shapes
        #: are read when the op first runs, after any set_shape the user added
        self.outputs: tuple[Any, ...] = ()
        self._static_resolved = False

    def set_site(self, site: CallSite) -> None:
        self.site = site
        self.site_row = tuple(site)  # what records store (see CallSite)

    def watch(self, func: Any) -> StateWatch:
        """Analysed on the first call that needs it (reading the code costs tens of us).

        The function comes with each call rather than being kept: probes live as long as their
        op, and a strong reference here would keep the user's function alive longer than TF does.
        """
        if self._watch is None:
            # graph mode calls TF's registered wrapper: the site keeps the user's function weakly
            self._watch = StateWatch(self.site.func or getattr(func, "__wrapped__", None) or func)
            self._switches_version = -1  # configure again: the compiled core can take the watch now
        return self._watch

    def _resolve_static_shapes(self) -> None:
        """What TF knows statically about each output, read once the graph is complete."""
        self._static_resolved = True
        shapes = []
        for reference in self.outputs:
            tensor = reference()
            shape = getattr(tensor, "shape", None)
            if shape is None or getattr(shape, "rank", None) is None:
                shapes.append(None)
            else:
                shapes.append(tuple(shape.as_list()))
        if any(shape is not None for shape in shapes):
            self.set_site(self.site._replace(static_shapes=tuple(shapes)))

    def _configure(self, plan: active.Plan) -> None:
        """Decide once per plan (not per call) which checks run for this op."""
        if not self._static_resolved and self.outputs:
            self._resolve_static_shapes()
        checks = switches.active(plan.checks, self.site.func_name)
        stateless = self.site.stateful is False
        self._capture = plan.capture
        self._mutation = "mutated-input" in checks
        self._retained = "retained-reference" in checks
        self._tout_check = self.tout is not None and "tout-mismatch" in checks
        self._tout_single = self.tout.single if self.tout is not None else None
        self._nondeterminism = stateless and "nondeterministic" in checks
        self._hidden = stateless and "hidden-state" in checks
        self._shape_check = self.site.static_shapes is not None and "shape-mismatch" in checks
        # large outputs are fingerprinted only for what compares them: determinism and replay
        self._hash_outputs = self._nondeterminism or plan.capture == 2
        self._plan = plan
        self._switches_version = switches.version
        watching = self._hidden or self._gathering
        self._fast = None if plan.capture == 2 or (watching and self._watch is None) else FastPath(
            plan, self._switches_version, plan.every_byte, plan.capture, self._retained, self._mutation,
            self._tout_check, self._tout_single, self._shape_check, self.site.static_shapes,
            self._nondeterminism, self.site.mode == "graph", self.site.origin == ORIGIN_GENERATOR,
            self._hash_outputs, plan.exact_sinks, plan.fitted_sinks, self._calls, self.site_row,
            self._watch if watching else None,
        )

    def call(self, func: Any, args: tuple, plan: active.Plan, eager_inputs: tuple = ()) -> Any:
        """Call ``func(*args)`` as TF would, record the call, check it, return its result.

        ``eager_inputs`` names the inputs that eager mode converted to a wider dtype than graph
        mode would (Python ints and floats): a ``Tout`` difference they explain is eager-only.
        """
        if plan is not self._plan or switches.version != self._switches_version:
            self._configure(plan)
        site = self.site
        capture = self._capture
        retained = self._retained
        watch = self.watch(func) if self._hidden or self._gathering else None
        # large arrays are hashed whole on the first calls and one call in FULL_CHECK_EVERY,
        # by sampled blocks on the others (turn: which window; -1: every byte)
        calls = self._calls[0]
        self._calls[0] = calls + 1
        turn = -1 if plan.every_byte or calls < FULL_CHECK_CALLS or not calls % FULL_CHECK_EVERY else calls

        # -- before the call: describe inputs (their contents as TF passed them) ----------------
        # Reference counts are read by the same loop shape before and after the call, so that
        # the interpreter's own references (loop variable, stack) cancel out.
        raw_inputs = []
        roots = []
        expected_refs = []
        bytes_in = 0
        payloads = _Payloads(plan) if capture == 2 else None
        for value in args:
            if type(value) is _ndarray:
                base = value.base
                if retained:
                    expected_refs.append(getrefcount(value) + (base is None))
                    expected_refs.append(getrefcount(base) + 1 if base is not None else 0)
                roots.append(value if base is None else (base if type(base) is not _ndarray else alias_root(value)))
            else:
                roots.append(None)
                if retained:
                    expected_refs.append(0)
                    expected_refs.append(0)
            raw = describe(value, capture, None, False, payloads, turn)
            raw_inputs.append(raw)
            bytes_in += raw[A_NBYTES]
        tokens_before = watch.snapshot() if watch is not None else None

        # -- the call itself --------------------------------------------------------------------
        start = _perf_ns()
        try:
            result: Any = func(*args)
        except BaseException as exc:
            if site.origin == ORIGIN_GENERATOR and type(exc) is StopIteration:
                raise  # the generator is exhausted: the end of the dataset, not a failed call
            duration = _perf_ns() - start
            self._record_failure(plan, args, raw_inputs, start, duration, exc, turn)
            raise
        duration = _perf_ns() - start
        seq = next(_seq)

        # -- retained references: count before anything else takes a reference ---------------
        violations: list[Violation] = []
        if retained:
            refs_after = []
            for value in args:
                if type(value) is _ndarray:
                    base = value.base
                    refs_after.append(getrefcount(value))
                    refs_after.append(getrefcount(base) if base is not None else 0)
                else:
                    refs_after.append(0)
                    refs_after.append(0)
            held_outputs = _output_refcounts(result)  # measured from this frame, as calibrated
            if refs_after != expected_refs:
                self._check_retained_inputs(args, expected_refs, refs_after, result, seq, violations)
            if self._kept_outputs or held_outputs:
                self._check_kept_outputs(held_outputs, roots, args, seq, violations)
        if self._mutation:
            self._find_mutations(args, raw_inputs, seq, violations, turn)

        # -- outputs ----------------------------------------------------------------------------
        kind = type(result)
        items = result if kind is tuple or kind is list else (() if result is None else (result,))
        graph = site.mode == "graph"
        raw_outputs = []
        bytes_out = 0
        for value in items:
            alias = None
            if type(value) is _ndarray:
                root = value if value.base is None else alias_root(value)
                for index, input_root in enumerate(roots):
                    if input_root is root:
                        alias = index
                        break
            raw = describe(value, capture, alias, graph, payloads, turn, self._hash_outputs)
            bytes_out += raw[A_NBYTES]
            raw_outputs.append(raw)
        hints: tuple[Hint, ...] = ()
        if self._tout_check and (kind is not _ndarray or result.dtype is not self._tout_single):  # pyright: ignore[reportOptionalMemberAccess]
            hints += self._check_tout(result, seq, violations, eager_inputs)
        if self._shape_check:
            self._check_shapes(raw_outputs, seq, violations)
        if self._nondeterminism and (turn < 0 or not _any_sampled(raw_inputs, raw_outputs)):
            self._check_determinism(raw_inputs, raw_outputs, seq, violations)
        if watch is not None:
            hints += self._check_state(watch, tokens_before, seq, violations)
        if graph:
            for raw in raw_outputs:
                if _needs_layout_copy(raw):
                    hints += (self._copied_hint(seq, raw_outputs),)
                    break
        row = (
            seq, self.site_row, _get_ident(), _thread_name(),
            start + _WALL_OFFSET_NS, duration, tuple(raw_inputs), tuple(raw_outputs), None,
            tuple(v.row() for v in violations) if violations else (),
            tuple(h.row() for h in hints) if hints else (), records._process, bytes_in, bytes_out,
        )
        for sink in plan.exact_sinks:
            sink.store(row)
        if plan.fitted_sinks or violations:
            active.deliver_rest(plan, Invocation.from_row(row))
        return result

    def _copied_hint(self, seq: int, raw_outputs: Any) -> Hint:
        name = self.site.func_name
        which = ", ".join(f"output {i}" for i, raw in enumerate(raw_outputs) if _needs_layout_copy(raw))
        return Hint("output-copied", name, seq, messages.output_copied_message(name, which))

    def _stop_gathering(self) -> None:
        """No more evidence to gather: the next call configures the probe again, without the
        watch."""
        if self._gathering:
            self._gathering = False
            self._switches_version = -1
            self._fast = None

    def _violation(self, kind: str, seq: int, message: str, argument: str) -> Violation:
        site = self.site
        return Violation(kind, site.func_name, seq, site.call_site, message, argument)

    def _find_mutations(self, args: tuple, raw_inputs: list, seq: int, violations: list, turn: int) -> None:
        """Inputs whose contents changed during the call (fingerprint before vs after, taken the
        same way: whole buffer, sampled for this turn, or logical contents)."""
        site = self.site
        for index, value in enumerate(args):
            if type(value) is not _ndarray:
                continue
            raw = raw_inputs[index]
            flags = raw[A_FLAGS]
            if flags & FLAG_BUFFER_HASH:
                now = _xxh3(value)
            elif flags & FLAG_SAMPLED:
                now = sampled_fingerprint(value, turn)
            else:
                now = fingerprint(value)
            if now != raw[A_FINGERPRINT] and value.flags.writeable:
                shares = bool(raw[A_FLAGS] & FLAG_SHARES_TENSOR)
                violations.append(self._violation(
                    "mutated-input", seq,
                    messages.mutated_input_message(site.func_name, index, site.mode, shares),
                    f"input {index}",
                ))

    def _check_state(self, watch: StateWatch, tokens_before: list | None, seq: int, violations: list) -> tuple:
        """Hidden state of stateless functions; purity evidence for stateful ones (-> hints)."""
        site = self.site
        changed = watch.changes(tokens_before or [])
        if self._hidden:
            for what in changed:
                violations.append(self._violation(
                    "hidden-state", seq, messages.hidden_state_message(site.func_name, what), what,
                ))
            return ()
        hints: list[Hint] = []
        if site.stateful:
            self._collect_stateless_evidence(bool(changed or violations), watch.complete, seq, hints)
        return tuple(hints)

    def _record_failure(
        self, plan: active.Plan, args: tuple, raw_inputs: list, start: int, duration: int,
        exc: BaseException, turn: int,
    ) -> None:
        """Record a call that raised; the user's exception then propagates unchanged."""
        self._stop_gathering()
        seq = next(_seq)
        violations: list[Violation] = []
        if self._mutation:
            self._find_mutations(args, raw_inputs, seq, violations, turn)
        self.impure = True
        invocation = Invocation.create(
            seq, self.site, _get_ident(), _thread_name(), start + _WALL_OFFSET_NS, duration,
            raw_inputs, (), _error_info(exc), violations,
        )
        try:
            active.deliver(plan, invocation)
        except active.ViolationError:
            pass  # the user's own exception wins; the violation is recorded

    def _check_tout(self, result: Any, seq: int, violations: list, eager_inputs: tuple) -> tuple[Hint, ...]:
        tout = self.tout
        if tout is None or tout.fast_match(result):
            return ()
        site = self.site
        hints: list[Hint] = []
        for problem in tout.problems(result, site.token):
            if site.mode == "eager" and eager_inputs and problem.widened_by_eager:
                hints.append(Hint(
                    "eager-conversion", site.func_name, seq,
                    messages.eager_conversion_message(site.func_name, problem, eager_inputs),
                ))
                continue
            violations.append(self._violation(
                "tout-mismatch", seq, messages.tout_message(site.func_name, site.mode, problem), problem.argument,
            ))
        return tuple(hints)

    def _check_shapes(self, raw_outputs: list, seq: int, violations: list) -> None:
        """Returned shapes against the static shapes the graph was built for (never checked by TF
        inside tf.function: every op downstream trusts them)."""
        site = self.site
        # a count mismatch between outputs and static shapes is the Tout check's business
        for index, (raw, declared) in enumerate(zip(raw_outputs, site.static_shapes or (), strict=False)):
            if declared is None:
                continue
            got = raw[A_SHAPE]
            if got == declared:
                continue
            if len(got) == len(declared) and all(d is None or d == g for g, d in zip(got, declared, strict=True)):
                continue
            violations.append(self._violation(
                "shape-mismatch", seq, messages.shape_mismatch_message(site.func_name, index, got, declared),
                f"output {index}",
            ))

    def _check_determinism(self, raw_inputs: list, raw_outputs: list, seq: int, violations: list) -> None:
        in_key = tuple((r[A_FINGERPRINT], r[A_SHAPE], r[A_DTYPE]) for r in raw_inputs)
        out_key = tuple((r[A_FINGERPRINT], r[A_SHAPE], r[A_DTYPE]) for r in raw_outputs)
        earlier = self.memory.observe(in_key, out_key, seq) if self.memory is not None else None
        if earlier is not None:
            violations.append(self._violation(
                "nondeterministic", seq, messages.nondeterministic_message(self.site.func_name, earlier), "outputs",
            ))

    def _check_retained_inputs(
        self, args: tuple, expected: list, after: list, result: Any, seq: int, violations: list,
    ) -> None:
        """Input reference counts that grew by more than the result itself explains.

        ``expected`` already includes the references of the ``roots`` list; the result may add
        one per occurrence of an input and one per returned view of it. A kept input is a view
        of a tensor buffer in graph mode, which TF reuses or frees after the call.
        """
        returned = _flatten(result)
        for index, value in enumerate(args):
            if type(value) is not _ndarray:
                continue
            base = value.base
            explained = sum(1 for r in returned if r is value or (type(r) is _ndarray and r.base is value))
            explained_base = 0
            if base is not None:
                explained_base = sum(
                    1 for r in returned if r is base or (type(r) is _ndarray and r.base is base)
                )
            if (
                after[2 * index] - expected[2 * index] > explained
                or after[2 * index + 1] - expected[2 * index + 1] > explained_base
            ):
                violations.append(self._violation(
                    "retained-reference", seq,
                    messages.retained_input_message(self.site.func_name, index), f"input {index}",
                ))

    def _check_kept_outputs(
        self, held: list[tuple[int, Any, int]], roots: list, args: tuple, seq: int, violations: list,
    ) -> None:
        """Returned memory that TF wraps without copying, reused while an earlier result may alias it.

        A returned array still referenced elsewhere (a generator's local, an enqueuer's batch, a
        module-level buffer) is remembered weakly with its fingerprint and address. At the next
        call of the op, a remembered array that is still alive is evidence of harm when its
        contents changed (a tensor already handed to TF changed under it) or when this call returns
        the same memory again. Arrays TF copies (not C-contiguous, not 64-byte aligned, strings),
        fresh arrays, and views of a source nobody writes never get a violation.
        """
        input_owners = {id(r) for r in roots if r is not None} | {id(a) for a in args}
        kept = []
        for index, owner, extra in held:
            if extra <= 0 or id(owner) in input_owners or not tf_wraps_without_copy(owner):
                continue
            try:
                reference = weakref.ref(owner)
            except TypeError:
                continue
            kept.append((reference, _content_token(owner), seq, index, owner.__array_interface__["data"][0]))
        earlier, self._kept_outputs = self._kept_outputs, kept
        if not earlier:
            return
        addresses = {entry[4] for entry in kept}
        mode = self.site.mode
        for reference, was, returned_at, index, address in earlier:
            array = reference()
            if array is None:
                continue  # TF and everybody else let go of it: nothing can see a change
            changed = _content_token(array) != was
            if changed or address in addresses:
                violations.append(self._violation(
                    "retained-reference", seq,
                    messages.reused_output_message(self.site.func_name, index, returned_at, seq, changed, mode),
                    f"output {index}",
                ))

    def _collect_stateless_evidence(self, impure: bool, complete: bool, seq: int, hints: list) -> None:
        if impure or not complete:
            # state changed, or the function reaches state the watch cannot see: no advice
            self.impure = impure or self.impure
            self._stop_gathering()
            return
        self.pure_calls += 1
        if self.pure_calls >= STATELESS_EVIDENCE_CALLS:
            self._stop_gathering()
        if self.pure_calls == STATELESS_EVIDENCE_CALLS and self.memory is None:
            name = self.site.func_name
            hints.append(Hint(
                "could-be-stateless", name, seq,
                messages.could_be_stateless_message(name, STATELESS_EVIDENCE_CALLS),
            ))


def _any_sampled(raw_inputs: list, raw_outputs: list) -> bool:
    return any(raw[A_FLAGS] & FLAG_SAMPLED for raw in raw_inputs) or any(
        raw[A_FLAGS] & FLAG_SAMPLED for raw in raw_outputs
    )


def _content_token(array: Any) -> int:
    """What a kept output is compared by at the next call: whole when small, sampled (a fixed
    turn) when large, so that a dense rewrite shows either way at a bounded cost."""
    if array.nbytes >= SAMPLED_MIN_BYTES and array.flags.c_contiguous:
        return sampled_fingerprint(array, 0)
    return fingerprint(array)


def _flatten(result: Any) -> list:
    """Every leaf of a (possibly nested) return value, as eager mode's ``nest.flatten`` sees it."""
    kind = type(result)
    if kind is tuple or kind is list or kind is dict:
        out = []
        for item in (result.values() if kind is dict else result):
            out.extend(_flatten(item))
        return out
    return [] if result is None else [result]


class _Payloads:
    """'full' capture for one call: copies of the arrays the recorders still have room for.

    The budget is checked against what this call already copied, since a record is charged
    as a whole when it is stored.
    """

    __slots__ = ("plan", "taken")

    def __init__(self, plan: active.Plan) -> None:
        self.plan = plan
        self.taken = 0

    def take(self, value: Any) -> tuple[np.ndarray | None, str | None]:
        nbytes = getattr(value, "nbytes", 0)
        if not isinstance(nbytes, int):
            nbytes = 0
        if nbytes > MAX_CAPTURE_ARRAY_BYTES:
            return None, f"not captured: {nbytes} bytes is over the {MAX_CAPTURE_ARRAY_BYTES}-byte limit per array"
        if not self.plan.wants_full_capture_of(self.taken + nbytes):
            return None, "not captured: capture budget is full"
        copy = capture_copy(value)
        if copy is None:
            return None, "not captured: TensorFlow cannot convert this value"
        self.taken += copy.nbytes
        return copy, None


def _output_refcounts(result: Any, calibrating: bool = False) -> list[tuple[int, Any, int]]:
    """(index, owner, unexplained references) of writeable returned arrays held elsewhere.

    A returned array counts as held when the array itself, or the buffer it views, has more
    references than the result explains. The expected counts depend on the interpreter (stack
    references, borrowed loads), so baselines are measured at import on fresh arrays through
    this same function (``calibrating`` returns the raw counts).
    """
    if type(result) is _ndarray and result.base is None:
        # the common case, without building lists: one array that owns its memory, returned bare
        extra = getrefcount(result) - _OUTPUT_BASELINE.get("bare", 0)
        if calibrating or (extra > 0 and result.flags.writeable):
            return [(0, result, extra)]
        return _NOTHING
    returned = _flatten(result)
    counts = []
    for index, item in enumerate(returned):
        if type(item) is not _ndarray or not item.flags.writeable:
            continue
        repeats = sum(1 for r in returned if r is item) - 1
        shape = "bare view" if item is result else "contained"
        extra = getrefcount(item) - 2 * repeats - _OUTPUT_BASELINE.get(shape, 0)
        if extra > 0 or calibrating:
            counts.append((index, item, extra))
            if not calibrating:
                continue
        base = item.base
        if base is None or type(base) is not _ndarray or not base.flags.writeable:
            continue  # owns its memory, or a read-only / foreign buffer numpy cannot rewrite
        views = sum(1 for r in returned if type(r) is _ndarray and r.base is base)
        extra = getrefcount(base) - views - _OUTPUT_BASELINE.get("base", 0)
        if extra > 0 or calibrating:
            counts.append((index, item, extra))  # the view is what TF holds; its buffer is kept
    return counts


def _calibrate_output_refcounts() -> dict[str, int]:
    """Reference counts of fresh, unshared results, seen from where the checks look."""
    baseline = {}
    result: Any = np.zeros(4)
    baseline["bare"] = _output_refcounts(result, True)[0][2]
    result = np.zeros(8)[::2]
    bare_view, base = _output_refcounts(result, True)
    baseline["bare view"], baseline["base"] = bare_view[2], base[2]
    result = (np.zeros(4),)
    baseline["contained"] = _output_refcounts(result, True)[0][2]
    return baseline


_NOTHING: list = []
_OUTPUT_BASELINE: dict[str, int] = {}
_OUTPUT_BASELINE = _calibrate_output_refcounts()


def _needs_layout_copy(raw: tuple) -> bool:
    """TF copies every non-C-contiguous output; misaligned ones too, but numpy's own large
    allocations are often 16 bytes off a 64-byte boundary, so that is recorded in
    ``will_be_copied`` without a hint the user could act on."""
    return bool(raw[A_WILL_BE_COPIED]) and not raw[A_FLAGS] & FLAG_C_CONTIGUOUS


# -- the per-call core: compiled when built, this module's CallProbe.call otherwise ---------------


def _rows_of(items: list) -> tuple:
    """Violations or hints as the plain rows a record stores."""
    return tuple(item.row() for item in items)


def _deliver_rest(plan: active.Plan, row: tuple) -> None:
    active.deliver_rest(plan, Invocation.from_row(row))


def _compiled_core() -> tuple[Callable[..., Any] | None, bool]:
    """The C twin of :meth:`CallProbe.call` (``_probe_core.c``, see :mod:`.core`), and whether
    it calls XXH3 directly (else through ``xxhash.xxh3_64_intdigest``)."""
    _probe_core = core.compiled
    if _probe_core is None:
        return None, False
    if FastPath._fields != _probe_core.FAST_FIELDS:
        core.stale("it was built for another version of probe.py")
        return None, False
    direct_hash = _probe_core.init(
        ndarray=np.ndarray, xxh3=_xxh3, describe=describe, perf_counter_ns=_perf_ns, seq=_seq,
        thread_name=_thread_name, threads=_THREADS, thread_name_property=vars(threading.Thread).get("name"),
        switches=switches, records=vars(records),
        output_refcounts=_output_refcounts, rows_of=_rows_of, deliver_rest=_deliver_rest,
        reference_call=CallProbe.call, wall_offset_ns=_WALL_OFFSET_NS, sampled_min_bytes=SAMPLED_MIN_BYTES,
        full_check_calls=FULL_CHECK_CALLS, full_check_every=FULL_CHECK_EVERY,
        copy_hint_min_bytes=COPY_HINT_MIN_BYTES, sample_elements=SAMPLE_ELEMENTS,
        flag_c_contiguous=FLAG_C_CONTIGUOUS, flag_writeable=records.FLAG_WRITEABLE,
        flag_shares_tensor=FLAG_SHARES_TENSOR, flag_stats_exact=records.FLAG_STATS_EXACT,
        flag_buffer_hash=FLAG_BUFFER_HASH, flag_sampled=FLAG_SAMPLED, unhashed_from_bytes=UNHASHED_FROM_BYTES,
        sample_blocks=SAMPLE_BLOCKS, sample_block_bytes=SAMPLE_BLOCK_BYTES, sample_window_bytes=SAMPLE_WINDOW_BYTES,
        xxh3_address=xxh3_function_address(),
    )
    return _probe_core.call, bool(direct_hash)


_compiled_call, _direct_hash = _compiled_core()
#: Which per-call core runs: 'compiled' (the C twin) or 'python' (the reference implementation).
CORE = "python" if _compiled_call is None else "compiled"
#: Whether the compiled core calls python-xxhash's XXH3 on array memory directly.
CORE_HASHES_DIRECTLY = _direct_hash
#: ``call_probe(probe, func, args, plan, eager_inputs=())``: what the hooks call for every call.
call_probe: Callable[..., Any] = CallProbe.call if _compiled_call is None else _compiled_call


__all__ = [
    "CORE", "ORIGIN_DECLARED", "ORIGIN_GENERATOR", "ORIGIN_UNDECLARED", "CallProbe", "call_probe", "safe_text",
]
