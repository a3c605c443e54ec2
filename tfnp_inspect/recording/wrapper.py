"""Wiring probes into TensorFlow: a declaration for every PyFunc op, and the calls that reach them.

From ``import tfnp_inspect`` on, every ``PyFunc``/``PyFuncStateless`` op built in the process —
through ``tf.numpy_function``, a name imported before us, ``tf.compat.v1.py_func`` or
``Dataset.from_generator`` — leaves its declaration (function, ``stateful``, ``Tout``, name, call
site) here, at graph-construction cost only, keyed by the op's registry token. While something
records, TF's registry calls reach the op's :class:`~.probe.CallProbe`; eager calls (which build
no op) go through a wrapper made per call. What TF registers and calls is never replaced, so its
own lifetime links (``func.ag_dnc_wrapper__``) and conversions stay exactly as TF sets them.

Nothing here keeps a graph or a user's function alive: a probe is dropped when TF's registered
callable dies, and a site keeps the user's function weakly.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from ..model import records
from ..model.naming import defined_at, function_name
from ..model.records import CallSite
from . import active, tf_hooks
from .probe import ORIGIN_DECLARED, ORIGIN_GENERATOR, ORIGIN_UNDECLARED, CallProbe, call_probe

#: token -> the op's probe, or None for ops that are not the user's (TF's own plumbing, EagerFunc).
_probes: dict[str, CallProbe | None] = {}
_TENSORFLOW_DIR = f"{os.sep}tensorflow{os.sep}"


def _drop(token: str) -> None:
    _probes.pop(token, None)


def _forget_with(registered: Any, token: str) -> None:
    """Drop the probe when TF's registered callable dies (with its graph)."""
    try:
        weakref.finalize(registered, _drop, token)
    except TypeError:  # not weakly referenceable: kept for the process's life (rare, small)
        pass


def _is_tensorflow_code(func: Any) -> bool:
    where = defined_at(func)
    return where is not None and _TENSORFLOW_DIR in where


def _user_generator(func: Any) -> Any:
    """The generator behind TF's ``from_generator`` plumbing (``generator_py_func``), if any."""
    if getattr(func, "__name__", None) != "generator_py_func":
        return None
    for cell in getattr(func, "__closure__", None) or ():
        try:
            state = cell.cell_contents
        except ValueError:
            continue
        generator = getattr(state, "_generator", None)
        if generator is not None and callable(generator):
            return generator
    return None


def _site(
    func: Any, mode: str, stateful: bool | None, spec: Any, tout_is_list: bool, name: str | None,
    token: str | None, call_site: str | None, origin: str,
) -> CallSite:
    return CallSite(
        func_name=function_name(func),
        module=getattr(func, "__module__", None),
        mode=mode,
        stateful=stateful,
        op_name=name,
        token=token,
        call_site=call_site,
        tout=spec.names if spec else None,
        tout_is_list=tout_is_list,
        origin=origin,
        key=records.remember_function(func),
        defined_at=defined_at(func),
    )


def _graph_probe(func: Any, spec: Any, tout_is_list: bool, stateful: bool | None, name: str | None,
                 token: str, call_site: str | None, origin: str) -> CallProbe | None:
    """The probe for one op; None for TensorFlow's own functions (they are not the user's code)."""
    generator = _user_generator(func)
    if generator is not None:
        site = _site(generator, "graph", True, spec, tout_is_list, name, token, call_site, ORIGIN_GENERATOR)
        return CallProbe(site, None)  # TF converts what the generator yields to Tout itself
    if _is_tensorflow_code(func):
        return None
    return CallProbe(_site(func, "graph", stateful, spec, tout_is_list, name, token, call_site, origin), spec)


def declare(func: Any, Tout: Any, stateful: Any, name: str | None, result: Any) -> None:
    """Called by TF's ``_internal_py_func`` (patched) after it built a numpy_function op."""
    op_name, token = tf_hooks.op_metadata(result)
    if token is None:
        return
    registered = tf_hooks.registered_function(token)
    if registered is None:
        return
    spec = tf_hooks.tout_spec(Tout)
    tout_is_list = spec.is_list if spec else isinstance(Tout, (list, tuple))
    call_site = tf_hooks.user_call_site(3)
    probe = _graph_probe(func, spec, tout_is_list, bool(stateful), name or op_name, token, call_site, ORIGIN_DECLARED)
    if probe is not None:
        probe.outputs = _weak_outputs(result)
        _count_build(probe.site, tf_hooks.building_function_name())
    _probes[token] = probe
    _forget_with(registered, token)


def _weak_outputs(result: Any) -> tuple[Any, ...]:
    """The op's output tensors, weakly: a graph's tensors must die with it."""
    tensors = result if isinstance(result, (list, tuple)) else [result]
    references = []
    for tensor in tensors:
        if not hasattr(tensor, "shape"):
            return ()  # an Operation (no outputs)
        try:
            references.append(weakref.ref(tensor))
        except TypeError:
            return ()
    return tuple(references)


class BuildCount(NamedTuple):
    """How often one call site was built into a graph (retracing shows up here)."""

    func_name: str
    call_site: str | None
    ops: int
    functions: tuple[str, ...]  # the tf.function (FuncGraph) names it was built into, first few


#: (function name, call site) -> ops built there, and the graphs they went into (bounded).
_builds: dict[tuple[str, str | None], BuildCount] = {}
_MAX_NAMED_FUNCTIONS = 8
_MAX_BUILD_SITES = 10_000


def _count_build(site: CallSite, function: str | None) -> None:
    key = (site.func_name, site.call_site)
    before = _builds.get(key)
    if before is None:
        if len(_builds) >= _MAX_BUILD_SITES:
            return
        _builds[key] = BuildCount(site.func_name, site.call_site, 1, (function,) if function else ())
        return
    functions = before.functions
    if function and function not in functions and len(functions) < _MAX_NAMED_FUNCTIONS:
        functions += (function,)
    _builds[key] = BuildCount(before.func_name, before.call_site, before.ops + 1, functions)


def build_counts() -> list[BuildCount]:
    """Ops built per function and call site since import, most built first."""
    return sorted(_builds.values(), key=lambda b: -b.ops)


def registry_size() -> int:
    """How many functions TF's PyFunc registry holds now (each pins its function and closure)."""
    return tf_hooks.registry_size()


def _undeclared_probe(token: str, registered: Any) -> CallProbe | None:
    """An op built before ``import tfnp_inspect``: TF kept no ``stateful``, ``Tout`` or call site."""
    if registered is None or tf_hooks.is_eager_func(registered):
        probe = None
    else:
        func = getattr(registered, "__wrapped__", registered)
        probe = _graph_probe(func, None, False, None, token, token, None, ORIGIN_UNDECLARED)
    _probes[token] = probe
    if registered is not None:
        _forget_with(registered, token)
    return probe


_UNSEEN = object()


def registry_call(original_call: Callable[..., Any]) -> Callable[..., Any]:
    """What ``FuncRegistry.__call__`` becomes while something records (the graph-mode hot path).

    Calls what TF registered through the op's probe, then converts the result exactly as TF does.
    """

    def __call__(self: Any, token: Any, device: Any, args: Any) -> Any:
        probe = _probes.get(token, _UNSEEN)
        plan = active.plan
        if plan is None:
            return original_call(self, token, device, args)
        registered = self.get(token, None)
        if probe is _UNSEEN:
            probe = _undeclared_probe(token, registered)
        if probe is None or registered is None:
            return original_call(self, token, device, args)
        ret = call_probe(probe, registered, args, plan)
        # FuncRegistry.__call__'s own conversion, after the call
        if isinstance(ret, bytes):
            ret = [ret]
        if isinstance(ret, (tuple, list)):
            return [self._convert(x) for x in ret]
        return self._convert(ret)

    return tf_hooks.mark_do_not_convert(__call__)


# -- eager mode: no op is built; TF calls func directly ------------------------------------------

#: Eager calls build no op: one probe per (function, call site, signature), so that the
#: determinism memory and the stateless evidence accumulate across calls.
_eager_probes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_EAGER_PROBES_PER_FUNCTION = 64


def _eager_probe(func: Any, Tout: Any, stateful: Any, name: Any, call_site: str | None) -> CallProbe:
    owner = getattr(func, "__func__", func)
    key = (id(getattr(func, "__self__", None)), call_site, repr(Tout), bool(stateful), name)
    try:
        per_function = _eager_probes.get(owner)
    except TypeError:  # not weak-referenceable: no memory across calls
        per_function = None
        owner = None
    if per_function is not None and key in per_function:
        return per_function[key]
    spec = tf_hooks.tout_spec(Tout)
    tout_is_list = spec.is_list if spec else isinstance(Tout, (list, tuple))
    site = _site(func, "eager", bool(stateful), spec, tout_is_list, name, None, call_site, ORIGIN_DECLARED)
    probe = CallProbe(site, spec)
    if owner is not None:
        if per_function is None:
            per_function = _eager_probes[owner] = {}
        if len(per_function) >= _EAGER_PROBES_PER_FUNCTION:
            per_function.pop(next(iter(per_function)))
        per_function[key] = probe
    return probe


_INT32 = (-(2**31), 2**31)


def _eager_widened(inp: Any) -> tuple[int, ...]:
    """Inputs that eager mode's ``np.array(x)`` makes int64/float64 where graph mode has int32/float32."""
    widened = []
    for index, value in enumerate(inp):
        kind = type(value)
        scalar = (kind is int and _INT32[0] <= value < _INT32[1]) or kind is float
        numbers = kind in (list, tuple) and bool(value) and all(type(v) in (int, float) for v in value)
        if scalar or numbers:
            widened.append(index)
    return tuple(widened)


def eager_call(original: Callable[..., Any]) -> Callable[..., Any]:
    """What TF's ``py_func_common`` becomes: eager calls go through a probe while something records."""

    def py_func_common(func: Any, inp: Any, Tout: Any, stateful: bool = True, name: str | None = None) -> Any:
        plan = active.plan
        if plan is None or not callable(func) or not tf_hooks.executing_eagerly():
            return original(func, inp, Tout, stateful=stateful, name=name)
        try:
            probe = _eager_probe(func, Tout, stateful, name, tf_hooks.user_call_site(2))
            widened = _eager_widened(inp) if probe.tout is not None else ()
        except Exception:  # noqa: BLE001 - never break the user's call: it runs unrecorded
            return original(func, inp, Tout, stateful=stateful, name=name)

        def observed(*args: Any) -> Any:
            return call_probe(probe, func, args, plan, widened)

        return original(observed, inp, Tout, stateful=stateful, name=name)

    py_func_common.__doc__ = original.__doc__
    return tf_hooks.mark_do_not_convert(py_func_common)


def on_build(original: Callable[..., Any]) -> Callable[..., Any]:
    """What TF's ``_internal_py_func`` becomes: builds the op as TF does, then keeps its declaration."""

    def _internal_py_func(func: Any, inp: Any, Tout: Any, stateful: Any = None, use_eager_py_func: bool = False,
                          is_grad_func: bool = False, name: Any = None) -> Any:
        result = original(func, inp, Tout, stateful=stateful, use_eager_py_func=use_eager_py_func,
                          is_grad_func=is_grad_func, name=name)
        if not use_eager_py_func:
            try:
                declare(func, Tout, stateful, name, result)
            except Exception:  # noqa: BLE001 - never break the user's graph: the op stays undeclared
                pass
        return result

    return tf_hooks.mark_do_not_convert(_internal_py_func)


def numpy_function(
    func: Any = None, inp: Any = None, Tout: Any = None, stateful: bool = True, name: str | None = None,
) -> Any:
    """Drop-in for ``tf.numpy_function`` (same arguments, results, errors and decorator form).

    Every PyFunc op built after ``import tfnp_inspect`` is observed whichever name built it, so
    this is TensorFlow's own function; it exists so that code can say where it expects tracing.
    """
    result = tf_hooks.script_ops().numpy_function(func, inp, Tout, stateful=stateful, name=name)
    if func is None:  # the decorator form: what it makes must not be converted by autograph either
        make = result
        return lambda fun: tf_hooks.mark_do_not_convert(make(fun))
    return result


tf_hooks.mark_do_not_convert(numpy_function)


__all__ = [
    "BuildCount", "build_counts", "declare", "eager_call", "numpy_function", "on_build",
    "registry_call", "registry_size",
]
