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

import xxhash

from ..checks.determinism import DeterminismMemory
from ..checks.hidden_state import StateWatch
from ..checks.messages import (
    hidden_state_message,
    mutated_input_message,
    nondeterministic_message,
    retained_input_message,
    retained_output_message,
    tout_message,
)
from ..checks.switches import switches
from ..checks.tout import ToutSpec
from ..model import records
from ..model.fingerprints import alias_root, fingerprint
from ..model.naming import defined_at, function_name
from ..model.records import (
    FLAG_BUFFER_HASH,
    FLAG_C_CONTIGUOUS,
    FLAG_SHARES_TENSOR,
    CallSite,
    ErrorInfo,
    Hint,
    Invocation,
    Violation,
)
from . import active, tf_hooks
from .arrays import MAX_CAPTURE_ARRAY_BYTES, capture_copy, describe

_ndarray = np.ndarray
_xxh3 = xxhash.xxh3_64_intdigest
_perf_ns = time.perf_counter_ns
_get_ident = threading.get_ident
_seq = itertools.count(1)
#: Converts perf_counter_ns readings to wall-clock ns (for exports merged across processes).
_WALL_OFFSET_NS = time.time_ns() - time.perf_counter_ns()
#: Per-thread cache of the thread's name (idents are reused by new threads: a dict keyed by
#: ident would give a new thread the name of a finished one).
_this_thread = threading.local()

#: Stateful functions are watched for hidden state during their first calls only: after this
#: many pure calls the inspector suggests ``stateful=False`` and stops paying for the watch.
STATELESS_EVIDENCE_CALLS = 100


def _thread_name() -> str:
    try:
        return _this_thread.name
    except AttributeError:
        name = _this_thread.name = threading.current_thread().name
        return name


class CallProbe:
    """Per-op state of the checks: what ``func`` can reach, what it returned before."""

    __slots__ = (
        "site", "site_row", "tout", "_watch", "memory", "_plan", "_switches_version",
        "_capture", "_mutation", "_retained", "_tout_check", "_nondeterminism", "_hidden",
        "pure_calls", "impure", "_gathering", "__weakref__",
    )

    def __init__(self, func: Any, site: CallSite, tout: ToutSpec | None) -> None:
        self.set_site(site)
        self.tout = tout
        self._watch: StateWatch | None = None
        self.memory = DeterminismMemory() if site.stateful is False else None
        self._plan: active.Plan | None = None
        self._switches_version = -1
        self.pure_calls = 0
        self.impure = False
        #: still watching a stateful function for evidence that it could be stateless
        self._gathering = bool(site.stateful)

    def set_site(self, site: CallSite) -> None:
        self.site = site
        self.site_row = tuple(site)  # what records store (see CallSite)

    def watch(self, func: Any) -> StateWatch:
        """Analysed on the first call that needs it (reading the code costs tens of us).

        The function comes with each call rather than being kept: probes live in caches keyed
        weakly by the function, which a strong reference here would keep alive forever.
        """
        if self._watch is None:
            self._watch = StateWatch(func)
        return self._watch

    def _configure(self, plan: active.Plan) -> None:
        """Decide once per plan (not per call) which checks run for this op."""
        checks = switches.active(plan.checks, self.site.func_name)
        stateless = self.site.stateful is False
        self._capture = plan.capture
        self._mutation = "mutated-input" in checks
        self._retained = "retained-reference" in checks
        self._tout_check = self.tout is not None and "tout-mismatch" in checks
        self._nondeterminism = stateless and "nondeterministic" in checks
        self._hidden = stateless and "hidden-state" in checks
        self._plan = plan
        self._switches_version = switches.version

    def call(self, func: Any, args: tuple, plan: active.Plan) -> Any:
        if plan is not self._plan or switches.version != self._switches_version:
            self._configure(plan)
        site = self.site
        capture = self._capture
        retained = self._retained
        watch = self.watch(func) if self._hidden or self._gathering else None

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
            raw = describe(value, capture, None, False, payloads)
            raw_inputs.append(raw)
            bytes_in += raw[2]
        tokens_before = watch.snapshot() if watch is not None else None

        # -- the call itself --------------------------------------------------------------------
        start = _perf_ns()
        try:
            result = func(*args)
        except BaseException as exc:
            duration = _perf_ns() - start
            self._gathering = False
            self._record_failure(plan, args, raw_inputs, start, duration, exc)
            raise
        duration = _perf_ns() - start
        seq = next(_seq)

        # -- retained references: count before anything else takes a reference ---------------
        violations = []
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
            output_refs = _output_refcounts(result)  # measured from this frame, as calibrated
            if output_refs or refs_after != expected_refs:
                self._check_retained(args, roots, expected_refs, refs_after, output_refs, result, seq, violations)
        if self._mutation:
            self._find_mutations(args, raw_inputs, seq, violations)

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
            raw = describe(value, capture, alias, graph, payloads)
            bytes_out += raw[2]
            raw_outputs.append(raw)
        hints = ()
        if self._tout_check and (kind is not _ndarray or result.dtype is not self.tout.single):
            self._check_tout(result, seq, violations)
        if self._nondeterminism:
            self._check_determinism(raw_inputs, raw_outputs, seq, violations)
        if watch is not None:
            hints = self._check_state(watch, tokens_before, seq, violations)
        if graph:
            for raw in raw_outputs:
                if raw[6] and _needs_layout_copy(raw):  # will_be_copied, for its layout
                    hints += (_output_copied_hint(site.func_name, seq, raw_outputs),)
                    break
        ident = _get_ident()
        row = (
            seq, self.site_row, ident, _thread_name(),
            start + _WALL_OFFSET_NS, duration, tuple(raw_inputs), tuple(raw_outputs), None,
            tuple(v.row() for v in violations) if violations else (),
            tuple(h.row() for h in hints) if hints else (), records._process, bytes_in, bytes_out,
        )
        for sink in plan.exact_sinks:
            sink.store(row)
        if plan.fitted_sinks or violations:
            active.deliver_rest(plan, Invocation.from_row(row))
        return result

    def _find_mutations(self, args: tuple, raw_inputs: list, seq: int, violations: list) -> None:
        """Inputs whose contents changed during the call (fingerprint before vs after)."""
        site = self.site
        for index, value in enumerate(args):
            if type(value) is not _ndarray:
                continue
            raw = raw_inputs[index]
            now = _xxh3(value) if raw[4] & FLAG_BUFFER_HASH else fingerprint(value)
            if now != raw[3] and value.flags.writeable:
                violations.append(Violation(
                    "mutated-input", site.func_name, seq, site.call_site,
                    mutated_input_message(site.func_name, index, site.mode, bool(raw[4] & FLAG_SHARES_TENSOR)),
                    f"input {index}",
                ))

    def _check_state(self, watch: StateWatch, tokens_before: list, seq: int, violations: list) -> tuple:
        """Hidden state of stateless functions; purity evidence for stateful ones (-> hints)."""
        site = self.site
        changed = watch.changes(tokens_before)
        if self._hidden:
            for what in changed:
                violations.append(Violation(
                    "hidden-state", site.func_name, seq, site.call_site,
                    hidden_state_message(site.func_name, what), what,
                ))
            return ()
        hints: list[Hint] = []
        if site.stateful:
            self._collect_stateless_evidence(bool(changed or violations), seq, hints)
        return tuple(hints)

    def _record_failure(
        self, plan: active.Plan, args: tuple, raw_inputs: list, start: int, duration: int,
        exc: BaseException,
    ) -> None:
        """Record a call that raised; the user's exception then propagates unchanged."""
        seq = next(_seq)
        violations: list[Violation] = []
        if self._mutation:
            self._find_mutations(args, raw_inputs, seq, violations)
        self.impure = True
        error = ErrorInfo(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)))
        ident = _get_ident()
        invocation = Invocation.create(
            seq, self.site, ident, _thread_name(), start + _WALL_OFFSET_NS, duration,
            raw_inputs, (), error, violations,
        )
        try:
            active.deliver(plan, invocation)
        except active.ViolationError:
            pass  # the user's own exception wins; the violation is recorded

    def _check_tout(self, result: Any, seq: int, violations: list) -> None:
        if self.tout.fast_match(result):
            return
        site = self.site
        for argument, problem, graph_error in self.tout.problems(result):
            violations.append(Violation(
                "tout-mismatch", site.func_name, seq, site.call_site,
                tout_message(site.func_name, site.mode, argument, problem, graph_error), argument,
            ))

    def _check_determinism(self, raw_inputs: list, raw_outputs: list, seq: int, violations: list) -> None:
        in_key = tuple((r[3], r[0], r[1]) for r in raw_inputs)  # (fingerprint, shape, dtype)
        out_key = tuple((r[3], r[0], r[1]) for r in raw_outputs)
        earlier = self.memory.observe(in_key, out_key, seq)
        if earlier is not None:
            site = self.site
            violations.append(Violation(
                "nondeterministic", site.func_name, seq, site.call_site,
                nondeterministic_message(site.func_name, earlier), "outputs",
            ))

    def _check_retained(
        self, args: tuple, roots: list, expected: list, after: list, output_refs: list,
        result: Any, seq: int, violations: list,
    ) -> None:
        """Reference counts that grew by more than the result itself explains.

        ``expected`` already includes the references of our ``roots`` list; the result may
        add one per occurrence of an input and one per returned view of it.
        """
        site = self.site
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
                violations.append(Violation(
                    "retained-reference", site.func_name, seq, site.call_site,
                    retained_input_message(site.func_name, index), f"input {index}",
                ))
        input_owners = {id(r) for r in roots if r is not None} | {id(a) for a in args}
        flagged = set()
        for index, owner, extra in output_refs:
            if extra <= 0 or id(owner) in input_owners or index in flagged:
                continue
            flagged.add(index)
            violations.append(Violation(
                "retained-reference", site.func_name, seq, site.call_site,
                retained_output_message(site.func_name, index), f"output {index}",
            ))

    def _collect_stateless_evidence(self, impure: bool, seq: int, hints: list) -> None:
        if impure:
            self.impure = True
            self._gathering = False
            return
        self.pure_calls += 1
        self._gathering = self.pure_calls < STATELESS_EVIDENCE_CALLS
        if self.pure_calls == STATELESS_EVIDENCE_CALLS and self.memory is None:
            name = self.site.func_name
            hints.append(Hint(
                "could-be-stateless", name, seq,
                f"{name} is declared stateful=True but its first {STATELESS_EVIDENCE_CALLS} calls "
                "changed no state outside their arguments and kept no references. If it is pure, "
                "stateful=False lets TensorFlow fold, prune and merge calls (check that it is also "
                "deterministic: the inspector then checks that for you).",
            ))


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
        if nbytes > MAX_CAPTURE_ARRAY_BYTES:
            return None, f"not captured: {nbytes} bytes is over the {MAX_CAPTURE_ARRAY_BYTES}-byte limit per array"
        if not self.plan.wants_full_capture_of(self.taken + nbytes):
            return None, "not captured: capture budget is full"
        self.taken += nbytes
        return capture_copy(value), None


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
        base = item.base
        if base is None or not isinstance(base, _ndarray) or not base.flags.writeable:
            continue  # owns its memory, or a read-only / foreign buffer numpy cannot rewrite
        views = sum(1 for r in returned if type(r) is _ndarray and r.base is base)
        extra = getrefcount(base) - views - _OUTPUT_BASELINE.get("base", 0)
        if extra > 0 or calibrating:
            counts.append((index, base, extra))
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


def _output_copied_hint(func_name: str, seq: int, raw_outputs: list) -> Hint:
    which = ", ".join(f"output {i}" for i, raw in enumerate(raw_outputs) if _needs_layout_copy(raw))
    return Hint(
        "output-copied", func_name, seq,
        f"TensorFlow must copy {which} of {func_name}: it is not C-contiguous (a transposed, "
        "reversed or strided view). Produce it in C order (np.ascontiguousarray, or compute "
        "into a C-ordered array) if the copy shows up in timings.",
    )


def _needs_layout_copy(raw: tuple) -> bool:
    """TF copies every non-C-contiguous output; misaligned ones too, but numpy's own large
    allocations are often 16 bytes off a 64-byte boundary, so that is recorded in
    ``will_be_copied`` without a hint the user could act on."""
    return bool(raw[6]) and not raw[4] & FLAG_C_CONTIGUOUS


# -- wiring functions into TF ----------------------------------------------------------------


def instrument(func: Any, probe: CallProbe) -> Callable[..., Any]:
    """The function TF registers in place of ``func``; a pass-through when nothing records."""

    def instrumented(*args: Any) -> Any:
        plan = active.plan
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
        key=records.remember_function(func),
        defined_at=defined_at(func),
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

    eager = tf_hooks.executing_eagerly()
    if eager and active.plan is None:
        return original(func, inp, Tout, stateful=stateful, name=name)  # nothing records this call
    call_site = tf_hooks.user_call_site(2)
    if eager:
        probe = _eager_probe(func, Tout, stateful, name, call_site)
        return original(instrument(func, probe), inp, Tout, stateful=stateful, name=name)
    site, spec = _make_site(func, Tout, stateful, name, "graph", call_site)
    probe = CallProbe(func, site, spec)
    instrumented = instrument(func, probe)
    result = original(instrumented, inp, Tout, stateful=stateful, name=name)
    op_name, token = tf_hooks.op_metadata(result)
    probe.set_site(site._replace(op_name=name or op_name, token=token))
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
            tout_is_list=False, origin="registry", key=records.remember_function(func),
            defined_at=defined_at(func),
        )
        probe = CallProbe(func, site, None)
        try:
            _foreign_probes[func] = probe
        except TypeError:
            pass

    def observed(*args: Any) -> Any:
        plan = active.plan
        if plan is None:
            return func(*args)
        return probe.call(func, args, plan)

    return observed
