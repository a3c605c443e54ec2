"""Catching strict-mode violations from graph code: ``with npi.raise_violations(): ...``.

In eager mode a strict violation reaches the caller as :class:`~tfnp_inspect.ViolationError`.
Inside ``tf.function`` or ``tf.data`` TensorFlow runs the function on its own threads and turns
every Python exception into ``tf.errors.UnknownError`` (or wraps it again, as Keras does), keeping
only its text: ``except npi.ViolationError`` never sees it. Inside :func:`raise_violations`, such
an error is raised again as the ``ViolationError`` it stands for, with the recorded
:class:`~tfnp_inspect.Violation` objects and TensorFlow's error as its ``__cause__``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from ..model.records import VIOLATION_KINDS, Violation
from . import active, session
from .active import ViolationError
from .recorder import Recorder

#: How a ViolationError's text starts in TensorFlow's message (the last line of the traceback
#: TF formats, or the error's own line).
_MARKER = re.compile(r"(?:^|\s|\})(?:[\w.]+\.)?ViolationError: (?=\[)")
#: One violation per line of a ViolationError's text: "[kind] message".
_LINE = re.compile(r"\[(?P<kind>[a-z-]+)\] (?P<message>.+)")


@contextmanager
def raise_violations() -> Iterator[None]:
    """Inside the block, an error that a strict-mode violation caused is raised as
    :class:`~tfnp_inspect.ViolationError`, wherever the call ran (eager, ``tf.function``,
    ``tf.data``, Keras)::

        with npi.trace(strict=True):
            try:
                with npi.raise_violations():
                    model.fit(dataset)
            except npi.ViolationError as error:
                error.violations  # the Violation objects, as in trace.violations

    Other errors pass through unchanged. The violations are the recorded ones when a recorder
    that saw them is still active (or is ``npi.recorder()``); otherwise they are rebuilt from
    TensorFlow's text (``seq`` -1, no call site).
    """
    seen_at_start = _recorders()
    try:
        yield
    except ViolationError:
        raise
    except Exception as error:  # re-raised below unless a strict violation caused it
        found = _violation_in(error, seen_at_start)
        if found is None:
            raise
        raise found from error


def _violation_in(error: BaseException, recorders: tuple[Recorder, ...]) -> ViolationError | None:
    """The ViolationError behind ``error``: in its chain of causes, or in TensorFlow's text."""
    link: BaseException | None = error
    chain = 0
    while link is not None and chain < 32:
        if isinstance(link, ViolationError):
            return link
        link = link.__cause__ or link.__context__
        chain += 1
    parsed = _parse(str(error))
    if not parsed:
        return None
    candidates = recorders + tuple(r for r in _recorders() if r not in recorders)
    return ViolationError(tuple(_recorded(kind, message, candidates) for kind, message in parsed))


def _parse(text: str) -> list[tuple[str, str]]:
    """(kind, message) of the violations a ViolationError's text lists (its last occurrence:
    TensorFlow shows the message once before the traceback and once after it)."""
    matches = list(_MARKER.finditer(text))
    if not matches:
        return []
    found = []
    for line in text[matches[-1].end():].split("\n"):
        line_match = _LINE.fullmatch(line.rstrip())
        if line_match is None or line_match["kind"] not in VIOLATION_KINDS:
            break
        found.append((line_match["kind"], line_match["message"]))
    return found


def _recorders() -> tuple[Recorder, ...]:
    """Recorders that may hold the violations: the active ones and the process-wide one."""
    plan = active.plan
    sinks = plan.sinks if plan is not None else ()
    process = session.recorder()
    return sinks if process in sinks else (*sinks, process)


def _recorded(kind: str, message: str, recorders: tuple[Recorder, ...]) -> Violation:
    for recorder in recorders:
        for violation in reversed(recorder.violations()):
            if violation.kind == kind and violation.message == message:
                return violation
    # no recorder kept it: what the text says (messages start with the function's name)
    func_name = re.split(r"[\s,:]", message, maxsplit=1)[0]
    return Violation(kind, func_name, -1, None, message, None)
