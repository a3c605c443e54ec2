"""The ``Tout`` contract: what graph mode accepts as a return value, and what it raises otherwise.

Graph mode splits the return value (``FuncRegistry.__call__``), converts each item with
``FuncRegistry._convert`` (``np.asarray(item, order='C')``, strings to bytes) and then checks
count and dtypes in C++. Everything numpy can convert is accepted when its dtype matches:
EagerTensors, objects with ``__array__``, Python scalars, bytes and str. The rules below mirror
TensorFlow 2.21 and are checked against it by the tests (error class and text).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

#: TF's kernel names types the C++ way in its errors ("is double, but expects float").
_TF_KERNEL_NAMES = {"float32": "float", "float64": "double", "float16": "half", "object": "string"}
#: Exceptions raised while converting map to TF error classes (py_func.cc); the rest: UnknownError.
_TF_ERROR_CLASSES = {
    "ValueError": "InvalidArgumentError", "TypeError": "InvalidArgumentError",
    "UnicodeEncodeError": "InvalidArgumentError", "MemoryError": "ResourceExhaustedError",
    "NotImplementedError": "UnimplementedError",
}
#: Widenings that eager mode's ``np.array(x)`` of a Python number causes and graph mode does not.
EAGER_WIDENINGS = frozenset({("int64", "int32"), ("float64", "float32")})


class ToutProblem(NamedTuple):
    """One way a return value breaks ``Tout``, with the error graph mode raises for it."""

    argument: str  # "outputs" or "output N"
    problem: str  # what was returned versus what Tout declares
    error_class: str  # TF's exception class in graph mode
    error_text: str  # TF's message (the op token as TF prints it)
    widened_by_eager: bool = False  # int64/float64 where Tout says int32/float32

    @property
    def predicted_error(self) -> str:
        return f"{self.error_class}: {self.error_text}"


class ToutSpec:
    """What ``Tout`` asks for, in numpy terms, and the rules graph mode applies to returns."""

    __slots__ = ("dtypes", "is_list", "names", "single")

    def __init__(self, names: tuple[str, ...], dtypes: tuple[np.dtype, ...], is_list: bool) -> None:
        self.names = names
        self.dtypes = dtypes
        self.is_list = is_list
        #: the one expected dtype, for an identity test on the hot path (None: not one array)
        self.single = dtypes[0] if len(dtypes) == 1 and not dtypes[0].hasobject else None

    def fast_match(self, result: Any) -> bool:
        """The common case in one branch: one ndarray of the declared dtype for one Tout."""
        return (
            len(self.dtypes) == 1
            and type(result) is np.ndarray
            and result.dtype == self.dtypes[0]
            and not result.dtype.hasobject
        )

    def problems(self, result: Any, token: str | None = None) -> list[ToutProblem]:
        """Each way ``result`` breaks the declaration, as graph mode would report it."""
        op = token or "pyfunc_N"
        items = returned_items(result)
        expected = len(self.dtypes)
        if len(items) != expected:
            return [ToutProblem(
                "outputs",
                f"returned {len(items)} value(s) ({type(result).__name__}) but Tout declares "
                f"{expected} ({', '.join(self.names) or 'none'})",
                "InvalidArgumentError",
                f"{op} returns {len(items)} values, but expects to see {expected} values.",
            )]
        found = []
        for index, (item, want, want_name) in enumerate(zip(items, self.dtypes, self.names, strict=True)):
            problem = _item_problem(item, index, want, want_name, op)
            if problem is not None:
                found.append(problem)
        return found


def returned_items(result: Any) -> list[Any]:
    """Split a return value the way TF's graph-mode PyFunc kernel does."""
    if result is None:
        return []
    if isinstance(result, bytes):
        return [result]
    if isinstance(result, (tuple, list)):
        return list(result)
    return [result]


def convert_like_tf(item: Any) -> np.ndarray:
    """One returned item as graph mode converts it (``FuncRegistry._convert``), without TF.

    Raises what the conversion raises (for example UnicodeEncodeError for non-ASCII ``<U``
    arrays, which TF encodes as ASCII bytes).
    """
    array = np.asarray(item, order="C")
    if array.dtype.char == "S" and array is not item:
        return np.asarray(item, order="C", dtype=object)
    if array.dtype.char == "U":
        if array is not item:
            return np.asarray(np.vectorize(lambda text: text.encode("utf8"))(item), order="C", dtype=object)
        return array.astype(np.bytes_)
    return array


def _kernel_name(name: str) -> str:
    return _TF_KERNEL_NAMES.get(name, name)


def _unsupported(array: np.ndarray) -> str | None:
    """TF's InternalError text for values its kernel cannot turn into a tensor at all."""
    dtype = array.dtype
    if dtype.names is not None or (dtype.kind == "V" and dtype.itemsize and dtype.name.startswith("void")):
        return "Unsupported numpy data type"
    if dtype.kind == "M":
        return "Unsupported numpy type: NPY_DATETIME"
    if dtype.kind == "m":
        return "Unsupported numpy type: NPY_TIMEDELTA"
    if dtype.hasobject:
        for element in array.flat:
            if not isinstance(element, (bytes, str)):
                return f"Unsupported object type {type(element).__name__}"
    return None


def _item_problem(item: Any, index: int, want: np.dtype, want_name: str, op: str) -> ToutProblem | None:
    """The problem with one returned value, or None when graph mode accepts it."""
    argument = f"output {index}"
    try:
        array = convert_like_tf(item)
    except Exception as exc:  # noqa: BLE001 - whatever TF's conversion would raise is the verdict
        name = type(exc).__name__
        try:
            text = str(exc)
        except Exception:  # noqa: BLE001 - an exception whose __str__ raises
            text = ""
        return ToutProblem(
            argument, f"returned a {type(item).__name__} that TensorFlow cannot convert ({name})",
            _TF_ERROR_CLASSES.get(name, "UnknownError"), f"{name}: {text}",
        )
    unsupported = _unsupported(array)
    if unsupported is not None:
        return ToutProblem(
            argument, f"returned {_described(item, array)}, which TensorFlow cannot turn into a tensor",
            "InternalError", unsupported,
        )
    is_string = array.dtype.hasobject or array.dtype.kind == "S"
    if want.hasobject:  # tf.string
        if is_string:
            return None
        got_name = array.dtype.name
    elif is_string:
        got_name = "string"
    elif array.dtype != want:
        got_name = array.dtype.name
    else:
        return None
    return ToutProblem(
        argument,
        f"returned {got_name}{_python_note(item)} where Tout declares {want_name}",
        "InvalidArgumentError",
        f"{index}-th value returned by {op} is {_kernel_name(got_name)}, but expects {_kernel_name(want_name)}",
        (got_name, want_name) in EAGER_WIDENINGS,
    )


def _python_note(item: Any) -> str:
    if isinstance(item, (np.ndarray, np.generic)):
        return ""
    return f" (a {type(item).__name__})"


def _described(item: Any, array: np.ndarray) -> str:
    if array.dtype.hasobject and not isinstance(item, np.ndarray):
        return f"a {type(item).__name__}"
    return f"an array of dtype {array.dtype}"
