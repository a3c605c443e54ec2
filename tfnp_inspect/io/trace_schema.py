"""The layout of ``trace.json`` as typed records, with the range of every number.

The reader decodes ``trace.json`` straight into these :mod:`msgspec` structs: types, required
fields and ranges are checked while the text is parsed, so a wrong value stops the parse where
it is found, before anything else is built. The writer takes its field names from the same
structs, so the two cannot drift apart. The format itself is described in
:mod:`tfnp_inspect.io.trace_file`.

Ranges: a file that loads must be safe to show, export again and open in the panel, so no
number may be larger than what the recorder itself can produce (64-bit counters, 64-bit
fingerprints, nanosecond times that fit an int64).
"""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from msgspec import Meta, Struct

from ..model.options import CAPTURE_LEVELS, DEFAULT_CAPACITY, DEFAULT_MAX_CAPTURE_BYTES
from ..model.pipeline import MAX_THREADS
from ..model.records import VIOLATION_KINDS
from ..model.shapes import MAX_DISTINCT_SHAPES, MAX_DTYPES
from ..model.stats import EXACT_QUANTILE_CALLS, bucket_of
from .trace_file import FLAGS

INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
#: Ring buffers larger than this cannot exist (10**12 records would need terabytes).
MAX_CAPACITY = 1 << 40
#: numpy arrays have at most 64 dimensions.
MAX_DIMENSIONS = 64
#: Duration histogram buckets: the bucket of the longest duration an int64 can hold.
MAX_BUCKET = bucket_of(INT64_MAX)
#: Distinct violation kinds counted per function (the recorder knows 5).
MAX_VIOLATION_KINDS = 256
#: Outputs (or inputs) per op: more than any numpy_function declares.
MAX_ARRAYS_PER_CALL = 1 << 16
#: tf.function names kept per call site (the recorder keeps 8).
MAX_BUILD_FUNCTIONS = 64

# -- number types, each with the words used when a value is wrong --------------------------

Int64 = Annotated[int, Meta(ge=-(1 << 63), le=INT64_MAX)]
Natural = Annotated[int, Meta(ge=0, le=INT64_MAX)]  # counts, sizes, durations in ns
# msgspec takes bounds within int64 only: the upper bounds of these two are checked by the
# reader (``check_range``).
Unsigned64 = Annotated[int, Meta(ge=0)]  # fingerprints: up to UINT64_MAX
ThreadIdent = Annotated[int, Meta(ge=-(1 << 63))]  # a C long or unsigned long: up to UINT64_MAX
ProcessId = Annotated[int, Meta(ge=0, le=(1 << 32) - 1)]
Index = Annotated[int, Meta(ge=0, le=(1 << 31) - 1)]
Capacity = Annotated[int, Meta(ge=1, le=MAX_CAPACITY)]
Bucket = Annotated[int, Meta(ge=0, le=MAX_BUCKET)]

FlagName = Literal["c_contiguous", "writeable", "shares_tensor", "stats_exact", "buffer_hash", "sampled"]
Mode = Literal["eager", "graph"]
Capture = Literal["none", "summary", "full"]
if set(get_args(FlagName)) != set(FLAGS) or get_args(Capture) != CAPTURE_LEVELS:  # pragma: no cover
    raise ImportError("trace_schema's flag names or capture levels differ from the model's")
Encoding = Literal["npy", "items"]
Shape = Annotated[tuple[Natural, ...], Meta(max_length=MAX_DIMENSIONS)]
#: A shape as TF knows it statically, or as calls agreed on it: None for an unknown dimension.
Dims = Annotated[tuple[Natural | None, ...], Meta(max_length=MAX_DIMENSIONS)]
#: Per output, its static dims, or None for an unknown rank.
StaticShapes = Annotated[tuple[Dims | None, ...], Meta(max_length=MAX_ARRAYS_PER_CALL)]

_UNIONS = (Union, types.UnionType)
#: What a Literal type's values are called in messages ("the unknown flag 'x'").
_LITERAL_NOUNS = {FlagName: "flag"}


class _Record(Struct, gc=False):
    """Records hold no cycles: the garbage collector need not track millions of them."""


class OptionsEntry(_Record):
    capacity: Capacity = DEFAULT_CAPACITY
    capture: Capture = "summary"
    max_capture_bytes: Natural = DEFAULT_MAX_CAPTURE_BYTES
    checks: Annotated[tuple[str, ...], Meta(max_length=MAX_VIOLATION_KINDS)] = VIOLATION_KINDS
    strict: bool = False
    byte_checks: Literal["sampled", "every-call"] = "sampled"


class StatsEntry(_Record):
    # mean_ns, p50_ns and p99_ns are written for readers of the JSON; they are derived again.
    func_name: str
    calls: Natural
    errors: Natural
    total_ns: Natural
    max_ns: Natural
    bytes_in: Natural
    bytes_out: Natural
    violations: Annotated[dict[str, Natural], Meta(max_length=MAX_VIOLATION_KINDS)]
    histogram: dict[Bucket, Natural]
    # absent from files written before they were kept (quantiles then come from the histogram)
    min_ns: Natural | None = None
    durations_ns: Annotated[list[Natural], Meta(max_length=EXACT_QUANTILE_CALLS)] | None = None


class ViolationEntry(_Record):
    kind: str
    func_name: str
    seq: Int64
    call_site: str | None
    message: str
    argument: str | None


class HintEntry(_Record):
    kind: str
    func_name: str
    seq: Int64
    message: str


class ErrorEntry(_Record):
    type: str
    message: str
    traceback: str


class ProcessEntry(_Record):
    host: str
    pid: ProcessId
    task: str | None


class SiteEntry(_Record):
    func_name: str
    module: str | None
    mode: Mode
    stateful: bool | None
    op_name: str | None
    token: str | None
    call_site: str | None
    tout: tuple[str, ...] | None
    tout_is_list: bool
    origin: str
    static_shapes: StaticShapes | None = None  # version 2 on: None when nothing is known


class DataEntry(_Record):
    member: str
    encoding: Encoding
    shape: Shape | None = None  # 'items' only: the object array's shape


class ArrayEntry(_Record):
    shape: Shape
    dtype: str
    nbytes: Natural
    fingerprint: Unsigned64 | None
    flags: tuple[FlagName, ...]
    aliases_input: Index | None
    will_be_copied: bool | None
    capture_note: str | None
    sample: tuple[Natural, Natural] | None  # [offset, length] into samples.npy
    data: DataEntry | None


class InvocationEntry(_Record):
    seq: Int64
    site: Index
    thread_id: ThreadIdent
    thread_name: str
    start_ns: Int64
    duration_ns: Natural
    inputs: tuple[ArrayEntry, ...]
    outputs: tuple[ArrayEntry, ...]
    error: ErrorEntry | None
    violations: tuple[ViolationEntry, ...]
    hints: tuple[HintEntry, ...]
    process: ProcessEntry


class PositionEntry(_Record):
    """Shapes one input or output position of an op had (``model.shapes.PositionShapes``)."""

    dims: Dims | None
    rank_varies: bool
    seen: Natural
    distinct: Annotated[tuple[tuple[Shape, Natural], ...], Meta(max_length=MAX_DISTINCT_SHAPES)]
    others: Natural
    dtypes: Annotated[tuple[str, ...], Meta(max_length=MAX_DTYPES)]


class ShapesEntry(_Record):
    """One op's observed shapes, every call counted (``model.shapes.SiteShapes``)."""

    func_name: str
    call_site: str | None
    mode: Mode
    origin: str
    static_shapes: StaticShapes | None
    calls: Natural
    errors: Natural
    inputs: Annotated[tuple[PositionEntry, ...], Meta(max_length=MAX_ARRAYS_PER_CALL)]
    outputs: Annotated[tuple[PositionEntry, ...], Meta(max_length=MAX_ARRAYS_PER_CALL)]
    output_count_varies: bool
    first_seq: Int64
    last_seq: Int64
    settled_seq: Int64


class PipelineEntry(_Record):
    """How one function's calls overlapped (``model.pipeline.Concurrency``)."""

    func_name: str
    calls: Natural
    total_ns: Natural
    busy_ns: Natural
    max_in_flight: Natural
    first_start_ns: Int64
    last_end_ns: Int64
    longest_ns: Natural
    threads: Annotated[tuple[tuple[ThreadIdent, str], ...], Meta(max_length=MAX_THREADS)]
    more_threads: Natural


class BuildEntry(_Record):
    """Ops built from one call site (``recording.wrapper.BuildCount``)."""

    func_name: str
    call_site: str | None
    ops: Natural
    functions: Annotated[tuple[str, ...], Meta(max_length=MAX_BUILD_FUNCTIONS)]


class Header(Struct):
    """Read first, without building anything else: is this a trace, and of which version?"""

    format: msgspec.Raw = msgspec.Raw(b"null")
    version: msgspec.Raw = msgspec.Raw(b"null")


class Document(_Record):
    format: str
    version: Natural
    options: OptionsEntry
    total: Natural
    dropped: Natural
    stats: list[StatsEntry]
    violations: list[ViolationEntry]
    sites: list[SiteEntry]
    invocations: list[InvocationEntry]  # a list: the reader frees each entry once converted
    # version 2 on (a version 1 file derives shapes and overlaps from its kept calls)
    shapes: list[ShapesEntry] | None = None
    pipeline: list[PipelineEntry] | None = None
    builds: list[BuildEntry] | None = None
    registry_size: Natural | None = None


def field_names(record: type[Struct]) -> tuple[str, ...]:
    return record.__struct_fields__


# -- messages ------------------------------------------------------------------------------

_JSON_NOUNS = {
    "int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean",
    "null": "null", "array": "a list", "object": "an object",
}
_MESSAGE = re.compile(r"^(?P<problem>.*?)(?: - at `(?P<key>key` in `)?(?P<path>\$[^`]*)`)?$", re.S)
_PATH_PART = re.compile(r"\.([A-Za-z_]\w*)|\[(\d+)\]")


def explain(error: msgspec.ValidationError, root: Any = Document, name: str = "trace") -> str:
    """Say what :mod:`msgspec` found wrong in this package's words, with the path of the value.

    ``Expected `int`, got `str` - at `$.invocations[0].seq``` becomes
    ``trace.invocations[0].seq must be an integer, not a string``.
    """
    text = str(error)
    match = _MESSAGE.match(text)
    if match is None:  # pragma: no cover - the pattern matches any text
        return f"{name}: {text}"
    problem, path = match["problem"], match["path"] or "$"
    where = name + path[1:]
    expected_type = _type_at(root, path)
    if match["key"]:
        key_type = _key_type(expected_type)
        return f"{where} has a key that is not {_describe(key_type, bounds=True)}"
    got = re.fullmatch(r"Expected `[^`]*`, got `(\w+)`", problem)
    if got:
        return f"{where} must be {_describe(expected_type)}, not {_JSON_NOUNS.get(got[1], got[1])}"
    sized = re.fullmatch(r"Expected `(array|object)` of length ([<>]=) (\d+)", problem)
    if sized:
        kind = "a list" if sized[1] == "array" else "an object"
        bound = "at most" if sized[2] == "<=" else "at least"
        return f"{where} must be {kind} of {bound} {sized[3]} items"
    if problem.startswith("Expected `int` "):  # a range: ">= 0", "<= 9223372036854775807"
        return f"{where} must be {_describe(expected_type, bounds=True)}"
    missing = re.fullmatch(r"Object missing required field `(\w+)`", problem)
    if missing:
        return f"{where}.{missing[1]} is missing"
    invalid = re.fullmatch(r"Invalid enum value (.*)", problem)
    if invalid:
        noun = _LITERAL_NOUNS.get(_strip(expected_type))
        if noun:
            return f"{where} is the unknown {noun} {invalid[1]}"
        return f"{where} must be {_describe(expected_type)}, not {invalid[1]}"
    return f"{where}: {_lower(problem)}"


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


def _strip(tp: Any) -> Any:
    """The type without its constraints (Annotated) and without ``| None``."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in _UNIONS:
        others = [a for a in get_args(tp) if a is not type(None)]
        if len(others) == 1:
            return _strip(others[0])
    return tp


def _type_at(root: type, path: str) -> Any:
    """The declared type of the value at a msgspec path such as ``$.invocations[0].seq``."""
    tp: Any = root
    for field, _ in _PATH_PART.findall(path):
        inner = _strip(tp)
        if field:
            if not (isinstance(inner, type) and issubclass(inner, Struct)):
                return None
            tp = typing.get_type_hints(inner, include_extras=True).get(field)
        else:
            args = get_args(inner)
            tp = args[0] if args else None
        if tp is None:
            return None
    return tp


def _key_type(tp: Any) -> Any:
    args = get_args(_strip(tp))
    return args[0] if args else None


def _describe(tp: Any, bounds: bool = False) -> str:
    """Words for a declared type: 'a non-negative integer', 'a string or null', ..."""
    if tp is None:
        return "a valid value"
    optional = False
    if get_origin(tp) in _UNIONS:
        args = get_args(tp)
        optional = type(None) in args
        others = [a for a in args if a is not type(None)]
        text = " or ".join(_describe(a, bounds) for a in others)
        return f"{text} or null" if optional else text
    meta = None
    if get_origin(tp) is Annotated:
        tp, *extras = get_args(tp)
        meta = next((m for m in extras if isinstance(m, Meta)), None)
    if tp is int:
        return _describe_int(meta, bounds)
    if tp is bool:
        return "a boolean"
    if tp is str:
        return "a string"
    origin = get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(v) for v in get_args(tp))
    if origin in (list, tuple):
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} items"
        bound = f" of at most {meta.max_length} items" if meta and meta.max_length else ""
        return f"a list{bound}"
    if origin is dict or (isinstance(tp, type) and issubclass(tp, Struct)):
        return "an object"
    return getattr(tp, "__name__", str(tp))


def _describe_int(meta: Meta | None, bounds: bool) -> str:
    low = meta.ge if meta is not None else None
    high = meta.le if meta is not None else None
    if low is not None and low < 0:
        return f"an integer from {low} to {high}" if bounds else "an integer"
    words = "a non-negative integer" if low == 0 else "a positive integer" if low == 1 else "an integer"
    return f"{words} up to {high}" if bounds and high is not None else words
