"""``tfnp_inspect.tf_hooks`` (all reliance on TF internals) against the installed TensorFlow:
the original function, autograph, call sites, patching, the PyFunc registry hook."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.ops import script_ops

import tfnp_inspect as npi
from tfnp_inspect.recording import tf_hooks

from core_helpers import ALIASES, ORIGINAL_REGISTRY_CALL, TF_NUMPY_FUNCTION, error_core, normalize, source_line

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),
]

HERE = os.path.abspath(__file__)


def double(x: np.ndarray) -> np.ndarray:
    return x * 2


def test_original_numpy_function_is_tensorflows() -> None:
    assert tf_hooks.original_numpy_function() is TF_NUMPY_FUNCTION is tf.numpy_function
    with npi.trace():
        assert tf.numpy_function is not TF_NUMPY_FUNCTION
        assert tf_hooks.original_numpy_function() is TF_NUMPY_FUNCTION  # never our patch


# -- autograph --------------------------------------------------------------------------------------


def converted_functions(run: Callable[[], Any]) -> set[str]:
    """Names of the functions autograph generated code for while ``run`` traced a tf.function."""
    generated: set[str] = set()

    def profiler(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and "__autograph_generated" in frame.f_code.co_filename:
            generated.add(frame.f_code.co_name)

    sys.setprofile(profiler)
    try:
        run()
    finally:
        sys.setprofile(None)
    return {name for name in generated if name.startswith("tf__")}


def test_autograph_does_not_convert_our_wrapper() -> None:
    @npi.numpy_function(Tout=tf.float32)
    def decorated_double(x: np.ndarray) -> np.ndarray:
        return x * 2

    def user_step(v: tf.Tensor) -> tf.Tensor:
        a = npi.numpy_function(double, [v], tf.float32)
        b = decorated_double(v)
        c = tf.numpy_function(double, [v], tf.float32)  # patched while tracing
        d = tf.compat.v1.numpy_function(double, [v], tf.float32)
        return a + b + c + d

    with npi.trace() as t:
        names = converted_functions(lambda: tf.function(user_step)(tf.ones([2])))
    assert names == {"tf__user_step"}  # the user's code is converted, ours never
    assert len(t.invocations) == 4
    assert {r.call_site for r in t.invocations} != {None}


def test_user_call_site_maps_through_autograph() -> None:
    sites: list[str | None] = []
    probe = tf.autograph.experimental.do_not_convert(lambda: sites.append(tf_hooks.user_call_site(2)))

    @tf.function
    def user_step(v: tf.Tensor) -> tf.Tensor:
        if tf.reduce_sum(v) > 0:  # converted control flow: the frame is autograph's generated code
            probe()  # site: probe
        return v

    user_step(tf.ones([2]))
    assert sites == [source_line(HERE, "probe")]


def test_user_call_site_in_plain_python() -> None:
    def caller() -> str | None:
        return tf_hooks.user_call_site(1)  # site: plain

    assert caller() == source_line(HERE, "plain")


def test_call_site_skips_library_frames() -> None:
    dataset = tf.data.Dataset.range(2).map(lambda i: npi.numpy_function(double, [i], tf.int64))  # site: dataset
    with npi.trace() as t:
        list(dataset)
    assert {r.call_site for r in t.invocations} == {source_line(HERE, "dataset")}


# -- patching --------------------------------------------------------------------------------------------


def replacement(*args: Any, **kwargs: Any) -> Any:
    return TF_NUMPY_FUNCTION(*args, **kwargs)


OBSERVED: list[tuple[str, str]] = []


def observing(original_call: Callable[..., Any]) -> Callable[..., Any]:
    """A registry hook that notes which token and function TF calls, and changes nothing."""

    def __call__(self: Any, token: Any, device: Any, args: Any) -> Any:
        func = self.get(token, None)
        if func is not None and not tf_hooks.is_eager_func(func):
            OBSERVED.append((getattr(func, "__name__", "?"), token))
        return original_call(self, token, device, args)

    return __call__


@pytest.fixture
def hooked() -> Iterator[None]:
    OBSERVED.clear()
    tf_hooks.patch(replacement, observing)
    try:
        yield
    finally:
        tf_hooks.unpatch()


def test_patch_and_unpatch_restore_the_exact_objects() -> None:
    originals = {name: owner.numpy_function for name, owner in ALIASES.items()}
    try:
        tf_hooks.patch(replacement, observing)
        assert tf_hooks.is_patched()
        assert all(owner.numpy_function is replacement for owner in ALIASES.values())
        assert script_ops.FuncRegistry.__dict__["__call__"] is not ORIGINAL_REGISTRY_CALL
        tf_hooks.patch(double, observing)  # a second patch changes nothing
        assert all(owner.numpy_function is replacement for owner in ALIASES.values())
    finally:
        tf_hooks.unpatch()
    assert not tf_hooks.is_patched()
    for name, owner in ALIASES.items():
        assert owner.numpy_function is originals[name] is TF_NUMPY_FUNCTION
    assert script_ops.FuncRegistry.__dict__["__call__"] is ORIGINAL_REGISTRY_CALL
    tf_hooks.unpatch()  # unpatching twice is harmless
    assert script_ops.FuncRegistry.__dict__["__call__"] is ORIGINAL_REGISTRY_CALL


def test_construction_hooks_are_in_place_from_import() -> None:
    """``import tfnp_inspect`` hooked how TF builds PyFunc ops (and nothing TF registers)."""
    assert getattr(script_ops, "_tfnp_inspect_hooked", False)
    assert script_ops._internal_py_func.__module__ == "tfnp_inspect.recording.wrapper"
    assert script_ops.py_func_common.__module__ == "tfnp_inspect.recording.wrapper"


RETURNS: dict[str, tuple[Any, Any]] = {
    "array": (lambda: np.arange(3, dtype=np.float32), tf.float32),
    "fortran": (lambda: np.asfortranarray(np.ones((2, 3), np.float32)), tf.float32),
    "bytes": (lambda: b"raw", tf.string),
    "str": (lambda: "text", tf.string),
    "unicode-array": (lambda: np.array(["ab", "c"]), tf.string),
    "object-array": (lambda: np.array([b"x", b"yz"], dtype=object), tf.string),
    "list": (lambda: [np.float32(1), np.int64(2)], [tf.float32, tf.int64]),
    "tuple": (lambda: (np.float32(1), np.int64(2)), [tf.float32, tf.int64]),
    "python-float": (lambda: 2.5, tf.float64),
    "nothing": (lambda: None, []),
    "wrong-count": (lambda: [np.float32(1)] * 2, tf.float32),
    "raises": (lambda: {}["missing"], tf.float32),
}


def _prebuilt(case: str) -> Callable[[], Any]:
    make, tout = RETURNS[case]

    def returning(x: np.ndarray) -> Any:
        return make()

    @tf.function
    def run() -> Any:
        result = TF_NUMPY_FUNCTION(returning, [tf.ones([1])], tout)
        return tf.constant(0) if isinstance(result, tf.Operation) else result

    outcome(run)  # it ran once before anything recorded
    return run


def outcome(run: Callable[[], Any]) -> Any:
    try:
        return ("returns", normalize(run()))
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        return ("raises", type(exc).__name__, error_core(exc))


@pytest.mark.parametrize("case", list(RETURNS))
def test_registry_hook_converts_results_exactly_as_tf(case: str) -> None:
    run = _prebuilt(case)  # a graph built before recording, as in a notebook
    expected = outcome(run)
    with npi.trace() as t:
        recorded_outcome = outcome(run)
    assert recorded_outcome == expected
    (record,) = t.invocations  # it went through the probe
    assert record.func_name.endswith("returning") and record.site.token.startswith("pyfunc_")


def test_registry_hook_passes_py_function_through() -> None:
    @tf.function
    def run(v: tf.Tensor) -> tf.Tensor:
        return tf.py_function(lambda x: x * 3, [v], tf.float32)

    with npi.trace() as t:
        assert run(tf.ones([2])).numpy().tolist() == [3.0, 3.0]
    assert t.invocations == []  # EagerFunc callbacks are not numpy functions


def test_our_numpy_function_is_recorded_once() -> None:
    run = tf.function(lambda v: npi.numpy_function(double, [v], tf.float32))
    with npi.trace() as t:
        assert run(tf.ones([2])).numpy().tolist() == [2.0, 2.0]
    assert [r.func_name for r in t.invocations] == ["double"]


def test_registry_hook_keeps_the_unknown_token_error() -> None:
    with npi.trace(), pytest.raises(ValueError, match="Could not find callback with key=no-such-token"):
        script_ops._py_funcs(token="no-such-token", device=None, args=[])


def test_observer_gets_the_ops_token(hooked: None) -> None:
    tokens: list[str] = []

    @tf.function
    def run(v: tf.Tensor) -> tf.Tensor:
        out = TF_NUMPY_FUNCTION(double, [v], tf.float32)
        tokens.append(out.op.get_attr("token").decode())
        return out

    run(tf.ones([1]))
    assert [token for _, token in OBSERVED] == tokens


# -- op metadata and Tout -----------------------------------------------------------------------------


def test_op_metadata_of_graph_results() -> None:
    seen: list[Any] = []

    @tf.function
    def run(v: tf.Tensor) -> tf.Tensor:
        single = TF_NUMPY_FUNCTION(double, [v], tf.float32, name="single")
        pair = TF_NUMPY_FUNCTION(lambda x: (x, x), [v], [tf.float32, tf.float32])
        nothing = TF_NUMPY_FUNCTION(lambda x: None, [v], [])
        for result, op in ((single, single.op), (pair, pair[0].op), (nothing, nothing)):
            seen.append((tf_hooks.op_metadata(result), (op.name, op.get_attr("token").decode())))
        return single

    run(tf.ones([1]))
    assert len(seen) == 3
    for found, expected in seen:
        assert found == expected
    assert seen[0][0][0] == "single"


def test_op_metadata_of_eager_results() -> None:
    result = TF_NUMPY_FUNCTION(double, [np.ones(1)], tf.float64)
    assert tf_hooks.op_metadata(result)[1] is None


@pytest.mark.parametrize(
    "tout, names, numpy_dtypes, is_list",
    [
        (tf.float32, ("float32",), (np.dtype(np.float32),), False),
        ([tf.int64, tf.string], ("int64", "string"), (np.dtype(np.int64), np.dtype(object)), True),
        ((tf.bool,), ("bool",), (np.dtype(np.bool_),), True),
        ("float64", ("float64",), (np.dtype(np.float64),), False),
        (np.int32, ("int32",), (np.dtype(np.int32),), False),
        ([], (), (), True),
    ],
)
def test_tout_spec(tout: Any, names: tuple, numpy_dtypes: tuple, is_list: bool) -> None:
    spec = tf_hooks.tout_spec(tout)
    assert (spec.names, spec.dtypes, spec.is_list) == (names, numpy_dtypes, is_list)


@pytest.mark.parametrize("tout", ["not-a-dtype", [tf.float32, "nope"], object()])
def test_tout_spec_of_what_tf_rejects(tout: Any) -> None:
    assert tf_hooks.tout_spec(tout) is None

    def build(numpy_function: Callable[..., Any]) -> Any:
        return tf.function(lambda v: numpy_function(double, [v], tout))(tf.ones([1]))

    with pytest.raises((TypeError, ValueError)) as from_tf:
        build(TF_NUMPY_FUNCTION)
    with pytest.raises(type(from_tf.value)) as from_ours:  # ours leaves the error to TF
        build(npi.numpy_function)
    assert error_core(from_ours.value) == error_core(from_tf.value)


def test_a_failing_declaration_never_breaks_the_users_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever goes wrong while keeping a declaration, the op is built as TF builds it and its
    calls are still observed (as an undeclared op)."""
    from tfnp_inspect.recording import wrapper

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("declaration failed")

    monkeypatch.setattr(wrapper, "declare", broken)
    step = tf.function(lambda v: tf.numpy_function(double, [v], tf.float32))
    with npi.trace() as t:
        assert step(tf.ones([2])).numpy().tolist() == [2.0, 2.0]
    assert [(r.func_name, r.site.origin) for r in t.invocations] == [("double", "registry")]
