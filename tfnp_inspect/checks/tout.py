"""The ``Tout`` contract: what graph mode accepts as a return value, and what it raises otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..model.fingerprints import as_array


class ToutSpec:
    """What ``Tout`` asks for, in numpy terms, and the rules graph mode applies to returns."""

    __slots__ = ("names", "dtypes", "is_list", "single")

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

    def problems(self, result: Any) -> list[tuple[str, str, str]]:
        """(argument, problem, graph-mode error) for each way ``result`` breaks the declaration."""
        items = returned_items(result)
        expected = len(self.dtypes)
        if len(items) != expected:
            kind = type(result).__name__
            return [(
                "outputs",
                f"returned {len(items)} value(s) ({kind}) but Tout declares {expected} "
                f"({', '.join(self.names) or 'none'})",
                f"InvalidArgumentError 'pyfunc_N returns {len(items)} values, but expects to see "
                f"{expected} values'",
            )]
        found = []
        for index, (item, want, name) in enumerate(zip(items, self.dtypes, self.names)):
            problem = _item_problem(item, index, want, name)
            if problem:
                found.append((f"output {index}", *problem))
        return found


def returned_items(result: Any) -> list[Any]:
    """Split a return value the way TF's graph-mode PyFunc kernel does."""
    if result is None:
        return []
    if isinstance(result, (tuple, list)):
        return list(result)
    return [result]


#: TF's kernel names types the C++ way in its errors ("is double, but expects float").
_TF_KERNEL_NAMES = {"float32": "float", "float64": "double", "float16": "half", "object": "string"}


def _kernel_name(name: str) -> str:
    return _TF_KERNEL_NAMES.get(name, name)


def _item_problem(item: Any, index: int, want: np.dtype, want_name: str) -> tuple[str, str] | None:
    """(problem, TF's graph-mode error) when one returned value does not match its Tout."""
    convertible = (np.ndarray, np.generic, bytes, str, bool, int, float, complex, list, tuple)
    if not isinstance(item, convertible):
        return (
            f"returned a {type(item).__name__} where Tout declares {want_name}",
            f"InternalError 'Unsupported object type {type(item).__name__}'",
        )
    try:
        got = as_array(item).dtype
    except Exception as exc:  # ragged lists and the like
        return f"returned a value numpy cannot convert ({exc})", "InvalidArgumentError"
    if want.hasobject:  # tf.string
        if got.kind in "OSU":
            return None
        got_name = got.name
    elif got.kind in "SU" or got.hasobject:
        got_name = "string"
    elif got != want:
        got_name = got.name
    else:
        return None
    python = "" if isinstance(item, (np.ndarray, np.generic)) else f" (a Python {type(item).__name__})"
    return (
        f"returned {got_name}{python} where Tout declares {want_name}",
        f"InvalidArgumentError '{index}-th value returned by pyfunc_N is {_kernel_name(got_name)}, "
        f"but expects {_kernel_name(want_name)}'",
    )
