"""Everything that relies on TensorFlow's internals, in one place (tested against the installed TF).

- the real ``numpy_function`` (``tensorflow.python.ops.script_ops``) and the public aliases we patch;
- the PyFunc registry (``script_ops._py_funcs``), through which TF calls every PyFunc op, so that
  graphs built before tracing was switched on are observed too;
- autograph's marker for functions it must not convert, and its source maps for call sites.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from ..checks.tout import ToutSpec

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_lock = threading.Lock()
_construction_lock = threading.Lock()
_saved_aliases: list[tuple[Any, str, Any]] = []
_saved_registry_call: Any = None


def tf() -> ModuleType:
    """TensorFlow, imported on first use so that ``import tfnp_inspect`` stays light."""
    import tensorflow

    return tensorflow


def script_ops() -> ModuleType:
    from tensorflow.python.ops import script_ops as module

    return module


def original_numpy_function() -> Callable[..., Any]:
    return script_ops().numpy_function


def executing_eagerly() -> bool:
    return tf().executing_eagerly()


def mark_do_not_convert(func: Callable[..., Any]) -> Callable[..., Any]:
    """What ``tf.autograph.experimental.do_not_convert`` sets, without importing TF at import.

    Autograph would otherwise rewrite our wrapper when it is called inside a ``tf.function``.
    """
    func.autograph_info__ = frozenset()  # type: ignore[attr-defined]
    return func


def tout_spec(Tout: Any) -> ToutSpec | None:
    """``Tout`` in numpy terms; None when TF would reject it anyway (TF raises its own error)."""
    try:
        is_list = isinstance(Tout, (list, tuple))
        dtypes = [tf().as_dtype(t) for t in (Tout if is_list else [Tout])]
        numpy_dtypes = tuple(
            np.dtype(object) if d == tf().string else np.dtype(d.as_numpy_dtype) for d in dtypes
        )
    except (TypeError, ValueError):
        return None
    return ToutSpec(tuple(d.name for d in dtypes), numpy_dtypes, is_list)


def op_metadata(result: Any) -> tuple[str | None, str | None]:
    """(op name, registry token) of a graph-mode PyFunc from the tensors or op it returned."""
    first: Any = result[0] if isinstance(result, (list, tuple)) and result else result
    op: Any = getattr(first, "op", first)
    try:
        token = op.get_attr("token")
        return op.name, token.decode() if isinstance(token, bytes) else str(token)
    except (AttributeError, ValueError, TypeError):
        return getattr(op, "name", None), None


# -- call sites ---------------------------------------------------------------------------------


def _is_library_frame(filename: str) -> bool:
    return (
        filename.startswith(_PACKAGE_DIR)
        or "__autograph_generated_file" in filename
        or f"{os.sep}tensorflow{os.sep}" in filename
        or f"{os.sep}keras{os.sep}" in filename
        or f"{os.sep}tf_keras{os.sep}" in filename
        or filename.startswith("<frozen ")
    )


def user_call_site(depth: int = 1) -> str | None:
    """file:line of the ``numpy_function`` call in user code, through autograph's rewriting."""
    frame = sys._getframe(depth)
    while frame is not None:
        filename = frame.f_code.co_filename
        if "__autograph_generated_file" in filename:
            origin = _autograph_origin(frame)
            if origin is not None:
                return origin
        elif not _is_library_frame(filename):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _autograph_origin(frame: Any) -> str | None:
    """Map a line of autograph's generated code back to the user's source line.

    The source map hangs on the converted function, a local (``converted_f``) of autograph's
    ``converted_call`` further up the stack; code nested in converted control flow (the body
    of an ``if``) is called from TF's control-flow helpers, so look all the way up.
    """
    filename, lineno = frame.f_code.co_filename, frame.f_lineno
    caller = frame.f_back
    while caller is not None:
        converted = caller.f_locals.get("converted_f") if "converted_f" in caller.f_code.co_varnames else None
        source_map = getattr(converted, "ag_source_map", None)
        if source_map:
            for location, origin in source_map.items():
                if location.filename == filename and location.lineno == lineno:
                    return f"{origin.loc.filename}:{origin.loc.lineno}"
        caller = caller.f_back
    return None


# -- patching -------------------------------------------------------------------------------------

SCRIPT_OPS = "tensorflow.python.ops.script_ops"


def registered_function(token: str) -> Any:
    """What TF's registry holds for ``token`` (weakly): the callable its PyFunc kernel calls."""
    return script_ops()._py_funcs.get(token, None)


def registry_size() -> int:
    """Functions TF's PyFunc registry holds now (0 before TensorFlow is imported)."""
    module = sys.modules.get(SCRIPT_OPS)
    return module._py_funcs.size() if module is not None else 0


def building_function_name() -> str | None:
    """The ``tf.function`` whose graph is being built now (its FuncGraph name), if any."""
    from tensorflow.python.framework import ops

    graph = ops.get_default_graph()
    name = getattr(graph, "name", None)
    return name if isinstance(name, str) and name else None


def is_eager_func(func: Any) -> bool:
    """``tf.py_function`` registrations (EagerFunc) take tensors, not arrays: not ours to record."""
    return isinstance(func, script_ops().EagerFunc)


def hook_construction(on_build: Callable[[Any], Any], eager_call: Callable[[Any], Any]) -> None:
    """Patch how TF builds PyFunc ops, as soon as ``script_ops`` is imported (now, if it is).

    ``_internal_py_func`` and ``py_func_common`` are looked up as module globals by every public
    entry point (``tf.numpy_function``, names imported earlier, ``tf.compat.v1.py_func``,
    ``Dataset.from_generator``), so patching them reaches every op built from now on.
    """

    def patch(module: ModuleType) -> None:
        with _construction_lock:  # not _lock: patch() below may import TF, which lands here
            if getattr(module, "_tfnp_inspect_hooked", False):
                return
            # setattr: these are TensorFlow's module globals, unknown to the type checker
            setattr(module, "_internal_py_func", on_build(module._internal_py_func))  # noqa: B010
            setattr(module, "py_func_common", eager_call(module.py_func_common))  # noqa: B010
            setattr(module, "_tfnp_inspect_hooked", True)  # noqa: B010

    module = sys.modules.get(SCRIPT_OPS)
    if module is not None:
        patch(module)
    else:
        sys.meta_path.insert(0, _AfterImport(SCRIPT_OPS, patch))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``then(module)`` right after ``name`` is imported, without importing anything itself."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        then = self.then

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec: Any) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: ModuleType) -> None:
                loader.exec_module(module)  # type: ignore[union-attr]
                then(module)

        spec.loader = _Loader()
        return spec


def _alias_owners() -> list[Any]:
    module = tf()
    owners = [module]
    for path in ("compat.v1", "compat.v2"):
        owner: Any = module
        for part in path.split("."):
            owner = getattr(owner, part, None)
        if owner is not None:
            owners.append(owner)
    return owners


def patch(replacement: Callable[..., Any], registry_hook: Callable[[Any], Any]) -> None:
    """While something records: ``tf.numpy_function`` (and its compat aliases) point to
    ``replacement``, so that a trace shows where it is on, and TF's PyFunc registry calls go
    through ``registry_hook(original_call)``."""
    global _saved_registry_call
    registry_class = script_ops().FuncRegistry  # imports TF first, outside the lock
    with _lock:
        if _saved_registry_call is not None:
            return
        for owner in _alias_owners():
            if hasattr(owner, "numpy_function"):
                _saved_aliases.append((owner, "numpy_function", owner.numpy_function))
                owner.numpy_function = replacement
        _saved_registry_call = registry_class.__call__
        registry_class.__call__ = registry_hook(_saved_registry_call)


def unpatch() -> None:
    global _saved_registry_call
    with _lock:
        while _saved_aliases:
            owner, attribute, original = _saved_aliases.pop()
            setattr(owner, attribute, original)
        if _saved_registry_call is not None:
            script_ops().FuncRegistry.__call__ = _saved_registry_call
            _saved_registry_call = None


def is_patched() -> bool:
    return _saved_registry_call is not None
