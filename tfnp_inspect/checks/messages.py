"""Every user-facing text of a violation or a hint, in one place.

Each says what happened, what TensorFlow does with it in graph versus eager mode, and the fix.
"""

from __future__ import annotations

from .tout import ToutProblem


def mutated_input_message(func_name: str, index: int, mode: str, shares_tensor: bool) -> str:
    if shares_tensor or mode == "graph":
        effect = (
            "In graph mode (tf.function, tf.data) this array is a zero-copy view of the input "
            "tensor's buffer, so the write changed that tensor for every other consumer, "
            "including a captured tf.constant on later runs."
        )
    else:
        effect = (
            "In eager mode inputs are copies, so nothing else saw the write; once this code runs "
            "inside tf.function or tf.data the same write corrupts the input tensor for every "
            "other consumer, so the program behaves differently there."
        )
    return (
        f"{func_name} wrote into input {index} in place. {effect} "
        f"Fix: work on a copy (x = x.copy()) or write into a new array (np.add(x, 1) instead of x += 1)."
    )


def retained_input_message(func_name: str, index: int) -> str:
    return (
        f"{func_name} kept a reference to input {index} (or a view of it) after returning. "
        "In graph mode that array is a zero-copy view of a tensor buffer which TensorFlow reuses "
        "or frees after the call, so reading or writing it later sees another step's data or "
        "corrupts a live tensor, nondeterministically. Fix: store a copy (np.array(x, copy=True))."
    )


def reused_output_message(func_name: str, index: int, returned_at: int, seq: int, changed: bool, mode: str) -> str:
    what = (
        f"the memory of output {index} returned at call #{returned_at} changed by call #{seq}"
        if changed else f"call #{seq} returned the memory of output {index} of call #{returned_at} again"
    )
    if mode == "graph":
        how = "TensorFlow wrapped that aligned, C-contiguous array without copying, so the tensor " \
              "returned earlier changes under its consumers"
    else:
        how = "eager mode copied the result, but inside tf.function or tf.data TensorFlow wraps an " \
              "aligned, C-contiguous returned array without copying, and the earlier tensor would " \
              "change under its consumers"
    return (
        f"{func_name}: {what} while that earlier result was still alive (a reused module-level, "
        f"attribute or generator buffer). {how}. Fix: return a fresh array (buf.copy()) or "
        "allocate a new buffer per call; mark a constant read-only (arr.flags.writeable = False)."
    )


def nondeterministic_message(func_name: str, first_seq: int) -> str:
    return (
        f"{func_name} is declared stateful=False but its outputs differ from those of call "
        f"#{first_seq} on the same input contents. In graph mode (tf.function, tf.data) TensorFlow "
        "may fold a stateless op with constant inputs into a constant, run it once for several "
        "consumers, or skip it when its output is unused, so a nondeterministic function is called "
        "fewer times than written (eager mode runs every call, which hides this). "
        "Fix: declare stateful=True, or make the function pure (seed a Generator from the inputs)."
    )


def hidden_state_message(func_name: str, what: str) -> str:
    return (
        f"{func_name} is declared stateful=False but changed state outside its arguments: {what}. "
        "In graph mode (tf.function, tf.data) TensorFlow may fold, prune or merge calls of a "
        "stateless op, so this side effect happens fewer times than written (or once, at trace "
        "time); eager mode runs every call, which hides this. "
        "Fix: declare stateful=True, or move the state into the function's inputs and outputs."
    )


def tout_message(func_name: str, mode: str, problem: ToutProblem) -> str:
    if mode == "eager":
        consequence = (
            "Eager mode accepts this silently (it converts whatever comes back), but the same "
            f"code inside tf.function or tf.data fails with {_sentence(problem.predicted_error)}"
        )
    else:
        predicted = _sentence(problem.predicted_error)
        consequence = f"In graph mode TensorFlow rejects it right after this call with {predicted}"
    return (
        f"{func_name}, {problem.argument}: {problem.problem}. {consequence} "
        "Fix: return exactly what Tout declares."
    )


def eager_conversion_message(func_name: str, problem: ToutProblem, widened_inputs: tuple[int, ...]) -> str:
    which = ", ".join(f"input {i}" for i in widened_inputs)
    return (
        f"{func_name}, {problem.argument}: {problem.problem}, only because eager mode hands Python "
        f"numbers ({which}) to the function as int64/float64 (np.array) while graph mode converts "
        "them to int32/float32 tensors first. Inside tf.function or tf.data this call returns what "
        "Tout declares; in eager mode the result keeps the wider dtype. Pass tensors "
        "(tf.constant(3)) to get the same dtypes in both modes."
    )


def could_be_stateless_message(func_name: str, calls: int) -> str:
    return (
        f"{func_name} is declared stateful=True but its first {calls} calls changed no state "
        "outside their arguments and kept no references, and everything it reaches was inspected. "
        "If it is pure, stateful=False lets TensorFlow fold, prune and merge calls (check that it "
        "is also deterministic: the inspector then checks that for you)."
    )


def output_copied_message(func_name: str, which: str) -> str:
    return (
        f"TensorFlow must copy {which} of {func_name}: it is not C-contiguous (a transposed, "
        "reversed or strided view). Produce it in C order (np.ascontiguousarray, or compute into "
        "a C-ordered array) if the copy shows up in timings."
    )


def _sentence(text: str) -> str:
    return text if text.endswith(".") else f"{text}."


def _shape_text(shape: tuple) -> str:
    return "[" + ", ".join("None" if d is None else str(d) for d in shape) + "]"


def shape_mismatch_message(func_name: str, index: int, got: tuple, declared: tuple) -> str:
    return (
        f"{func_name}, output {index}: returned shape {_shape_text(got)} where the graph declares "
        f"{_shape_text(declared)} (from set_shape, or the static shape TF inferred for this output). Inside "
        "tf.function TensorFlow never checks this at run time, so every op downstream was built for "
        "the wrong shape (tf.data checks its element_spec and fails with 'Incompatible shapes'). "
        "Fix: return what the static shape says, or declare the shape the function really returns "
        "(tf.ensure_shape checks it on every call)."
    )


def unknown_shape_message(
    func_name: str, call_site: str | None, calls: int, outputs: int, fixes: list[tuple[int, str, str, str]],
) -> str:
    """``fixes``: (output index, what every call returned, what TF knows, the shape to declare)."""
    where = f" at {call_site}" if call_site else ""
    single = outputs == 1
    names = "y: its result" if single else ", ".join(f"y{i}" for i in range(outputs)) + ": its results in order"
    known = "; ".join(
        f"{'its output' if single else f'output {index}'} returned {returned} on all {calls:,} calls, "
        f"but TensorFlow knows it only as {static}"
        for index, returned, static, _ in fixes
    )
    variable = (lambda index: "y") if single else (lambda index: f"y{index}")
    set_lines = "; ".join(f"`{variable(index)}.set_shape({dims})`" for index, _, _, dims in fixes)
    ensure_lines = "; ".join(
        f"`{variable(index)} = tf.ensure_shape({variable(index)}, {dims})`" for index, _, _, dims in fixes
    )
    varied = " (None: the dimensions that varied between calls)" if any("None" in d for *_, d in fixes) else ""
    return (
        f"{func_name}{where}: {known}. A numpy_function's outputs have no static shape unless the code "
        "declares one, and ops and layers built on them see only what was declared (Keras fails with "
        "'as_list() is not defined on an unknown TensorShape' or 'Cannot take the length of shape with "
        "unknown rank'; layers that need an unknown dimension cannot be built, and shape checks are "
        "skipped). "
        f"Add after the numpy_function call ({names}): {set_lines}{varied}; or {ensure_lines}, which also "
        "checks the shape on every call."
    )


def serialized_message(
    func_name: str, calls: int, threads: int, mean_in_flight: float, parallel_work: float, busy_share: float,
) -> str:
    return (
        f"{func_name} was called {calls:,} times from {threads} threads, but its calls took turns "
        f"({mean_in_flight:.2f} in flight on average; their work progressed {parallel_work:.2f} calls "
        f"at a time) while keeping it busy {busy_share:.0%} of the time from its first call to its "
        "last: the pipeline waited on it one call at a time. A Python function holds the GIL while "
        "its Python code runs, so TensorFlow's threads (a tf.data map with num_parallel_calls) take "
        "turns instead of running it in parallel. What helps: numpy work on whole arrays, which "
        "releases the GIL (fewer Python-level loops: vectorise them into a few large numpy calls, "
        "or map over batches rather than single elements); moving the work into TensorFlow ops "
        "(tf.image, tf.strings, tf.math), which need no Python at all; and, if the map is "
        "sequential, num_parallel_calls=tf.data.AUTOTUNE once the work releases the GIL."
    )


def retraced_message(
    func_name: str, call_site: str | None, ops: int, functions: tuple[str, ...], registry_size: int | None,
) -> str:
    where = f" at {call_site}" if call_site else ""
    if functions:
        named = ", ".join(functions)
        traced = f"the tf.function around it ({named}) was traced again and again"
    else:
        traced = "the function around it was traced again and again"
    registry = f" ({registry_size:,} functions registered now)" if registry_size is not None else ""
    return (
        f"The numpy_function call of {func_name}{where} was built into {ops:,} ops: {traced}. Each graph "
        f"pins {func_name} and its closure in TensorFlow's PyFunc registry{registry} for as long as "
        "the graph lives, so memory grows with every retrace. The usual cause is a Python number or "
        "object passed as an argument: every new value is a new trace. Fix: pass tensors "
        "(tf.constant(x)) instead of Python scalars, give the tf.function an input_signature, or "
        "use tf.function(reduce_retracing=True)."
    )


def core_choice_message(wanted: str, choices: tuple[str, ...]) -> str:
    return f"TFNP_INSPECT_CORE must be one of {', '.join(choices)}; got {wanted!r}"


def core_missing_message(reason: str) -> str:
    return (
        f"TFNP_INSPECT_CORE=compiled, but the compiled per-call core cannot be used: {reason}. Build it "
        "with `pip install -e .` (or `python setup.py build_ext --inplace`) where gcc and the Python "
        "headers are installed, or unset TFNP_INSPECT_CORE to fall back to the pure-Python core."
    )
