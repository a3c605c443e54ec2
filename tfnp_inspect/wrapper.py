"""The instrumented ``numpy_function``: a drop-in that records and checks every call of ``func``.

TF calls our wrapper instead of ``func``; the wrapper calls ``func`` with exactly the arguments
TF gave and returns (or raises) exactly what ``func`` returned (or raised), so TF's own
conversions, checks and error mapping stay as they are. The only addition to the user's
program is a :class:`~tfnp_inspect.ViolationError` in strict mode.

The per-call work lives in :meth:`CallProbe.call`. It is the hot path: a bare call costs about
32 us here and the default mode may add 10%, so it avoids numpy reductions and allocations.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from sys import getrefcount
from typing import Any

import numpy as np

from . import session, tf_hooks
from .arrays import alias_root, capture_copy, describe, fingerprint, MAX_CAPTURE_ARRAY_BYTES
from .checks import (
    DeterminismMemory,
    ToutSpec,
    function_name,
    hidden_state_message,
    mutated_input_message,
    nondeterministic_message,
    retained_input_message,
    retained_output_message,
    switches,
    tout_message,
)
from .records import CallSite, ErrorInfo, Hint, Invocation, RawArray, Violation, current_process
from .statecheck import StateWatch

_ndarray = np.ndarray
_perf_ns = time.perf_counter_ns
_get_ident = threading.get_ident
_seq = itertools.count(1)
#: Converts perf_counter_ns readings to wall-clock ns (for exports merged across processes).
_WALL_OFFSET_NS = time.time_ns() - time.perf_counter_ns()
_thread_names: dict[int, str] = {}

#: Stateful functions are watched for hidden state during their first calls only: after this
#: many pure calls the inspector suggests ``stateful=False`` and stops paying for the watch.
STATELESS_EVIDENCE_CALLS = 100


def _thread_name(ident: int) -> str:
    name = _thread_names.get(ident)
    if name is None:
        name = _thread_names[ident] = threading.current_thread().name
    return name


class CallProbe:
    """Per-op state of the checks: what ``func`` can reach, what it returned before."""

    __slots__ = (
        "site", "tout", "_watch", "_watch_source", "memory", "_checks_for", "_checks",
        "pure_calls", "impure", "__weakref__",
    )

    def __init__(self, func: Any, site: CallSite, tout: ToutSpec | None) -> None:
        self.site = site
        self.tout = tout
        self._watch: StateWatch | None = None
        self._watch_source = func if site.stateful is not None else None
        self.memory = DeterminismMemory() if site.stateful is False else None
        self._checks_for: Any = None
        self._checks: frozenset[str] = frozenset()
        self.pure_calls = 0
        self.impure = False

    def watch(self) -> StateWatch | None:
        """Analysed on the first call that needs it (reading the code costs tens of us)."""
        if self._watch is None and self._watch_source is not None:
            self._watch = StateWatch(self._watch_source)
            self._watch_source = None
        return self._watch

    def checks(self, plan: session.Plan) -> frozenset[str]:
        key = (plan, switches.off_globally, switches.off_per_function)
        if key != self._checks_for:
            self._checks = switches.active(plan.checks, self.site.func_name)
            self._checks_for = key
        return self._checks

    def call(self, func: Any, args: tuple, plan: session.Plan) -> Any:
        site = self.site
        checks = self.checks(plan)
        capture = plan.capture
        check_mutation = "mutated-input" in checks
        check_retained = "retained-reference" in checks
        stateless = site.stateful is False
        watch = None
        if stateless:
            if "hidden-state" in checks:
                watch = self.watch()
        elif site.stateful and not self.impure and self.pure_calls < STATELESS_EVIDENCE_CALLS:
            watch = self.watch()

        # -- before the call: describe inputs (their contents as TF passed them) ----------------
        refs_before = _input_refcounts(args) if check_retained else None
        raw_inputs, fps, roots = _describe_inputs(args, capture, plan)
        tokens_before = watch.snapshot() if watch is not None else None

        # -- the call itself --------------------------------------------------------------------
        start = _perf_ns()
        try:
            result = func(*args)
        except BaseException as exc:
            duration = _perf_ns() - start
            violations: list[Violation] = []
            seq = next(_seq)
            if check_mutation:
                self._check_mutation(args, fps, seq, violations)
            self.impure = True
            error = ErrorInfo(
                type(exc).__name__, str(exc), "".join(traceback.format_exception(exc))
            )
            self._finish(plan, seq, start, duration, raw_inputs, (), error, violations, [], raise_strict=False)
            raise
        duration = _perf_ns() - start
        seq = next(_seq)

        # -- retained references: count before anything else takes a reference ---------------
        violations = []
        if check_retained:
            refs_after = _input_refcounts(args)
            output_refs = _output_refcounts(result)  # measured from this frame, as calibrated
            self._check_retained(args, roots, refs_before, refs_after, output_refs, result, seq, violations)
        if check_mutation:
            self._check_mutation(args, fps, seq, violations)

        # -- outputs ----------------------------------------------------------------------------
        items = result if type(result) in (tuple, list) else (() if result is None else (result,))
        graph = site.mode == "graph"
        raw_outputs = []
        for value in items:
            alias = None
            if type(value) is _ndarray:
                root = alias_root(value)
                for index in range(len(args)):
                    if roots[index] is root:
                        alias = index
                        break
            raw_outputs.append(
                _describe_with_capture(value, None, capture, plan, alias, graph)
            )
        hints: list[Hint] = []
        tout = self.tout
        if tout is not None and "tout-mismatch" in checks and not tout.fast_match(result):
            for argument, problem, graph_error in tout.problems(result):
                violations.append(Violation(
                    "tout-mismatch", site.func_name, seq, site.call_site,
                    tout_message(site.func_name, site.mode, problem, graph_error), argument,
                ))
        if stateless and "nondeterministic" in checks and self.memory is not None:
            in_key = tuple((fp, r.shape, r.dtype) for fp, r in zip(fps, raw_inputs))
            out_key = tuple((r.fingerprint, r.shape, r.dtype) for r in raw_outputs)
            earlier = self.memory.observe(in_key, out_key, seq)
            if earlier is not None:
                violations.append(Violation(
                    "nondeterministic", site.func_name, seq, site.call_site,
                    nondeterministic_message(site.func_name, earlier), "outputs",
                ))
        if watch is not None:
            changed = watch.changes(tokens_before)
            if stateless:
                for what in changed:
                    violations.append(Violation(
                        "hidden-state", site.func_name, seq, site.call_site,
                        hidden_state_message(site.func_name, what), what,
                    ))
            else:
                self._collect_stateless_evidence(bool(changed or violations), seq, hints)
        if graph:
            copied = [i for i, r in enumerate(raw_outputs) if r.will_be_copied]
            if copied:
                hints.append(_output_copied_hint(site.func_name, seq, copied))
        self._finish(plan, seq, start, duration, raw_inputs, raw_outputs, None, violations, hints, True)
        return result

    def _check_mutation(self, args: tuple, fps: list, seq: int, violations: list) -> None:
        site = self.site
        for index, value in enumerate(args):
            if type(value) is _ndarray and value.flags.writeable and fingerprint(value) != fps[index]:
                violations.append(Violation(
                    "mutated-input", site.func_name, seq, site.call_site,
                    mutated_input_message(site.func_name, index, site.mode, value.base is not None and site.mode == "graph"),
                    f"input {index}",
                ))

    def _check_retained(
        self, args: tuple, roots: list, before: list, after: list, output_refs: list,
        result: Any, seq: int, violations: list,
    ) -> None:
        """Reference counts that grew by more than the result and our own lists explain."""
        site = self.site
        returned = _flatten(result)
        for index, value in enumerate(args):
            if type(value) is not _ndarray:
                continue
            base = value.base
            # references that we or the result hold: `roots` entries, occurrences in the result,
            # and returned views whose immediate base is the array (or its base)
            explained = sum(1 for r in roots if r is value) + sum(1 for r in returned if r is value)
            explained += sum(1 for r in returned if type(r) is _ndarray and r.base is value)
            explained_base = 0
            if base is not None:
                explained_base = sum(1 for r in roots if r is base) + sum(
                    1 for r in returned if r is base or (type(r) is _ndarray and r.base is base)
                )
            grew = after[index][0] - before[index][0] - explained
            grew_base = after[index][1] - before[index][1] - explained_base if base is not None else 0
            if grew > 0 or grew_base > 0:
                violations.append(Violation(
                    "retained-reference", site.func_name, seq, site.call_site,
                    retained_input_message(site.func_name, index), f"input {index}",
                ))
        input_owners = {id(r) for r in roots if r is not None} | {id(a) for a in args}
        for index, owner, extra in output_refs:
            if extra <= 0 or id(owner) in input_owners:
                continue
            violations.append(Violation(
                "retained-reference", site.func_name, seq, site.call_site,
                retained_output_message(site.func_name, index), f"output {index}",
            ))

    def _collect_stateless_evidence(self, impure: bool, seq: int, hints: list) -> None:
        if impure:
            self.impure = True
            return
        self.pure_calls += 1
        if self.pure_calls == STATELESS_EVIDENCE_CALLS and self.memory is None:
            name = self.site.func_name
            hints.append(Hint(
                "could-be-stateless", name, seq,
                f"{name} is declared stateful=True but its first {STATELESS_EVIDENCE_CALLS} calls "
                "changed no state outside their arguments and kept no references. If it is pure, "
                "stateful=False lets TensorFlow fold, prune and merge calls (check that it is also "
                "deterministic: the inspector then checks that for you).",
            ))

    def _finish(
        self, plan: session.Plan, seq: int, start: int, duration: int, raw_inputs: list,
        raw_outputs: Any, error: ErrorInfo | None, violations: list, hints: list,
        raise_strict: bool,
    ) -> None:
        ident = _get_ident()
        invocation = Invocation(
            seq, self.site, ident, _thread_name(ident), start + _WALL_OFFSET_NS, duration,
            tuple(raw_inputs), tuple(raw_outputs), error, tuple(violations), tuple(hints),
            current_process(),
        )
        if raise_strict:
            session.deliver(plan, invocation)
        else:
            try:
                session.deliver(plan, invocation)
            except session.ViolationError:
                pass  # the user's own exception wins; the violation is recorded


def _flatten(result: Any) -> list:
    """Every array-like object in a (possibly nested) return value, as eager mode flattens it."""
    if type(result) in (tuple, list):
        out = []
        for item in result:
            out.extend(_flatten(item))
        return out
    return [] if result is None else [result]


def _input_refcounts(args: tuple) -> list[tuple[int, int]]:
    """Reference counts of each input array and of the object owning its memory."""
    counts = []
    for value in args:
        if type(value) is _ndarray:
            base = value.base
            counts.append((getrefcount(value), getrefcount(base) if base is not None else 0))
        else:
            counts.append((0, 0))
    return counts


def _describe_inputs(args: tuple, capture: int, plan: session.Plan) -> tuple[list, list, list]:
    """(records, fingerprints, memory owners) of the inputs, in a frame of its own so that
    no local variable here distorts the reference counts taken after the call."""
    raw_inputs, fps, roots = [], [], []
    for value in args:
        fp = fingerprint(value)
        fps.append(fp)
        roots.append(alias_root(value) if type(value) is _ndarray else None)
        raw_inputs.append(_describe_with_capture(value, fp, capture, plan, None, False))
    return raw_inputs, fps, roots


def _output_refcounts(result: Any) -> list[tuple[int, Any, int]]:
    """(index, owner, references beyond the expected ones) for writeable returned arrays.

    The expected references depend on the interpreter (stack references, borrowed loads), so
    the baseline is measured at import on fresh arrays through this same function.
    """
    returned = _flatten(result)
    counts = []
    for index, item in enumerate(returned):
        if type(item) is not _ndarray or not item.flags.writeable:
            continue
        base = item.base
        if base is None:
            repeats = sum(1 for r in returned if r is item) - 1
            raw = getrefcount(item) - 2 * repeats
            shape = "bare" if item is result else "contained"
        else:
            if not isinstance(base, _ndarray) or not base.flags.writeable:
                continue  # a read-only or foreign buffer cannot be rewritten through numpy
            raw = getrefcount(base) - sum(1 for r in returned if type(r) is _ndarray and r.base is base)
            shape = "view"
        counts.append((index, base if base is not None else item, raw - _OUTPUT_BASELINE.get(shape, 0)))
    return counts


def _calibrate_output_refcounts() -> dict[str, int]:
    baseline = {}
    result: Any = np.zeros(4)
    baseline["bare"] = _output_refcounts(result)[0][2]
    result = (np.zeros(4),)
    baseline["contained"] = _output_refcounts(result)[0][2]
    result = np.zeros(8)[::2]
    baseline["view"] = _output_refcounts(result)[0][2]
    return baseline


_OUTPUT_BASELINE: dict[str, int] = {}
_OUTPUT_BASELINE = _calibrate_output_refcounts()


def _describe_with_capture(
    value: Any, fp: Any, capture: int, plan: session.Plan, alias: int | None, graph: bool,
) -> RawArray:
    data = note = None
    if capture == 2:
        nbytes = getattr(value, "nbytes", 0)
        if nbytes > MAX_CAPTURE_ARRAY_BYTES:
            note = f"not captured: {nbytes} bytes is over the {MAX_CAPTURE_ARRAY_BYTES}-byte limit per array"
        elif plan.wants_full_capture_of(nbytes):
            data = capture_copy(value)
        else:
            note = "not captured: capture budget is full"
    return describe(
        value, sample=capture >= 1, data=data, note=note, aliases_input=alias, copy_check=graph,
        fp=fp,
    )


def _output_copied_hint(func_name: str, seq: int, outputs: list[int]) -> Hint:
    which = ", ".join(f"output {i}" for i in outputs)
    return Hint(
        "output-copied", func_name, seq,
        f"TensorFlow must copy {which} of {func_name}: not C-contiguous or not 64-byte aligned. "
        "Return np.ascontiguousarray(...) of a fresh array if the copy shows up in timings.",
    )


# -- wiring functions into TF ----------------------------------------------------------------


def instrument(func: Any, probe: CallProbe) -> Callable[..., Any]:
    """The function TF registers in place of ``func``; a pass-through when nothing records."""

    def instrumented(*args: Any) -> Any:
        plan = session.active
        if plan is None:
            return func(*args)
        return probe.call(func, args, plan)

    instrumented.__name__ = getattr(func, "__name__", type(func).__name__)
    instrumented.__qualname__ = probe.site.func_name
    instrumented.__tfnp_probe__ = probe  # type: ignore[attr-defined]
    return tf_hooks.mark_do_not_convert(instrumented)


def _make_site(func: Any, Tout: Any, stateful: Any, name: Any, mode: str, call_site: str | None) -> tuple[CallSite, ToutSpec | None]:
    spec = tf_hooks.tout_spec(Tout)
    site = CallSite(
        func_name=function_name(func),
        module=getattr(func, "__module__", None),
        mode=mode,
        stateful=bool(stateful),
        op_name=name,
        token=None,
        call_site=call_site,
        tout=spec.names if spec else None,
        tout_is_list=spec.is_list if spec else isinstance(Tout, (list, tuple)),
    )
    return site, spec


#: Eager calls build no op: reuse one probe per (function, call site, signature) so that the
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
    site, spec = _make_site(func, Tout, stateful, name, "eager", call_site)
    probe = CallProbe(func, site, spec)
    if owner is not None:
        if per_function is None:
            per_function = _eager_probes[owner] = {}
        if len(per_function) >= _EAGER_PROBES_PER_FUNCTION:
            per_function.pop(next(iter(per_function)))
        per_function[key] = probe
    return probe


def numpy_function(func: Any = None, inp: Any = None, Tout: Any = None, stateful: bool = True, name: str | None = None) -> Any:
    """Drop-in for ``tf.numpy_function`` that records and checks every call of ``func``.

    Same arguments, results and errors as ``tf.numpy_function`` (also its decorator form,
    ``@numpy_function(Tout=...)``). Outside ``trace()``/``install()`` it records nothing and
    costs one attribute read per call.
    """
    original = tf_hooks.original_numpy_function()
    if func is None:
        # Let TF validate the decorator arguments (same errors), then decorate with ours.
        original(func=None, inp=inp, Tout=Tout, stateful=stateful, name=name)

        def decorator(fun: Any) -> Any:
            def decorated(*args: Any) -> Any:
                return numpy_function(fun, inp=args, Tout=Tout, stateful=stateful, name=name)

            decorated.__name__ = getattr(fun, "__name__", "decorated")
            decorated.__qualname__ = getattr(fun, "__qualname__", decorated.__name__)
            decorated.__doc__ = getattr(fun, "__doc__", None)
            decorated.__wrapped__ = fun  # type: ignore[attr-defined]
            return tf_hooks.mark_do_not_convert(decorated)

        return decorator
    if not callable(func) or inp is None or Tout is None:
        return original(func=func, inp=inp, Tout=Tout, stateful=stateful, name=name)

    call_site = tf_hooks.user_call_site(2)
    if tf_hooks.executing_eagerly():
        probe = _eager_probe(func, Tout, stateful, name, call_site)
        return original(instrument(func, probe), inp, Tout, stateful=stateful, name=name)
    site, spec = _make_site(func, Tout, stateful, name, "graph", call_site)
    probe = CallProbe(func, site, spec)
    instrumented = instrument(func, probe)
    result = original(instrumented, inp, Tout, stateful=stateful, name=name)
    op_name, token = tf_hooks.op_metadata(result)
    site.op_name = name or op_name
    site.token = token
    if token is not None:
        tf_hooks.instrumented_tokens.add(token)
        weakref.finalize(instrumented, tf_hooks.instrumented_tokens.discard, token)
    return result


tf_hooks.mark_do_not_convert(numpy_function)


def patched_numpy_function(func: Any = None, inp: Any = None, Tout: Any = None, stateful: bool = True, name: str | None = None) -> Any:
    """What ``tf.numpy_function`` points to while tracing (keeps TF's docstring visible)."""
    return numpy_function(func, inp, Tout, stateful=stateful, name=name)


tf_hooks.mark_do_not_convert(patched_numpy_function)


_foreign_probes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def observe_foreign(func: Any, token: str) -> Callable[..., Any]:
    """An observer for a PyFunc registered without us (graph built before tracing started).

    TF keeps no ``stateful``, ``Tout`` or call site we can read at call time: the record has
    ``origin='registry'``, ``stateful=None``, the registry token as ``op_name``, and the checks
    that need those (stateless checks, ``Tout``) are skipped.
    """
    try:
        probe = _foreign_probes.get(func)
    except TypeError:
        probe = None
    if probe is None:
        site = CallSite(
            func_name=function_name(func), module=getattr(func, "__module__", None), mode="graph",
            stateful=None, op_name=token, token=token, call_site=None, tout=None,
            tout_is_list=False, origin="registry",
        )
        probe = CallProbe(func, site, None)
        try:
            _foreign_probes[func] = probe
        except TypeError:
            pass

    def observed(*args: Any) -> Any:
        plan = session.active
        if plan is None:
            return func(*args)
        return probe.call(func, args, plan)

    return observed
