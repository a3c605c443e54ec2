"""pytest plugin (``pytest11`` entry point): guard tests against ``tf.numpy_function`` misuse.

- fixture ``npfunc_trace``: a :class:`~tfnp_inspect.Trace` recording the test;
- ``--npfunc-strict`` (every test) or ``@pytest.mark.npfunc_strict`` (marked tests): a test
  fails when a contract violation was recorded while it ran, with the messages in the report.

Tests that use neither run exactly as without the plugin: nothing is traced or patched.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from ..model.records import Violation
from ..recording.trace import Trace

MARKER = "npfunc_strict"
SECTION = "tf.numpy_function violations"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tfnp_inspect", "tf.numpy_function inspection (tfnp_inspect)")
    group.addoption(
        "--npfunc-strict",
        action="store_true",
        default=False,
        help="fail every test during which a tf.numpy_function contract violation was recorded",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: fail this test when a tf.numpy_function contract violation "
        "(mutated input, retained reference, nondeterminism, hidden state, Tout mismatch) "
        "is recorded while it runs",
    )


@pytest.fixture
def npfunc_trace() -> Iterator[Trace]:
    """Record every ``tf.numpy_function`` call made during the test."""
    from ..recording.session import trace

    with trace() as recorded:
        yield recorded


def _guarded(item: pytest.Item) -> bool:
    marked = item.get_closest_marker(MARKER) is not None
    return marked or bool(item.config.getoption("npfunc_strict"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    if not _guarded(item):
        return (yield)
    from ..recording.session import trace
    from ..views.render import undeclared_note

    with trace() as recorded:
        try:
            result = yield
        except BaseException:
            # The test failed anyway: add what was recorded to its report.
            if recorded.violations:
                item.add_report_section("call", SECTION, failure_text(recorded.violations))
            raise
    undeclared = undeclared_note(recorded)
    if undeclared:  # the report says which contracts could not be checked, never a bare pass
        item.add_report_section("call", SECTION, undeclared)
    if recorded.violations:
        pytest.fail(failure_text(recorded.violations), pytrace=False)
    return result


def failure_text(violations: list[Violation]) -> str:
    """What a guarded test's report says: each distinct violation once, with the calls it hit."""
    calls: dict[tuple, list[int]] = {}
    for v in violations:
        calls.setdefault((v.kind, v.func_name, v.call_site, v.message), []).append(v.seq)
    lines = [f"{len(violations)} tf.numpy_function contract violation(s) recorded during the test:"]
    for (kind, func_name, call_site, message), seqs in calls.items():
        where = f" at {call_site}" if call_site else ""
        label = "call" if len(seqs) == 1 else "calls"
        numbers = ", ".join(f"#{seq}" for seq in seqs)
        lines.append(f"[{kind}] {func_name}{where} ({label} {numbers}): {message}")
    return "\n".join(lines)


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.getoption("npfunc_strict"):
        return "tfnp_inspect: --npfunc-strict (tests fail on tf.numpy_function violations)"
    return None
