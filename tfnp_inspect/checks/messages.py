"""Every user-facing text of a violation or a hint, in one place.

Each says what happened, what TensorFlow does with it in graph versus eager mode, and the fix.
"""

from __future__ import annotations


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


def retained_output_message(func_name: str, index: int) -> str:
    return (
        f"{func_name} returned output {index} and still holds a reference to it (for example a "
        "reused module-level or attribute buffer). In graph mode TensorFlow wraps an aligned "
        "returned array without copying, so a later write to that buffer silently changes tensors "
        "already returned. Fix: return a fresh array (buf.copy()), or mark a constant read-only "
        "(arr.flags.writeable = False)."
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


def tout_message(func_name: str, mode: str, argument: str, problem: str, graph_error: str) -> str:
    if mode == "eager":
        consequence = (
            "Eager mode accepts this silently (it converts whatever comes back), but the same "
            f"code inside tf.function or tf.data fails with {graph_error}."
        )
    else:
        consequence = (
            f"In graph mode TensorFlow rejects it with a cryptic {graph_error} naming only the op token."
        )
    return f"{func_name}, {argument}: {problem}. {consequence} Fix: return exactly what Tout declares."
