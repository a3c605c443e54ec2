"""Suite-wide guards: quiet TensorFlow, and no test may leave tracing switched on."""

from __future__ import annotations

import os
from collections.abc import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

import tfnp_inspect  # noqa: E402
import tfnp_inspect as npi  # noqa: E402
from core_helpers import assert_tracing_off, python_threads  # noqa: E402
from tfnp_inspect.recording import session  # noqa: E402
from tfnp_inspect.checks.switches import switches  # noqa: E402
from tfnp_inspect.model.options import Options  # noqa: E402


@pytest.fixture(autouse=True)
def _no_tracing_leaks(request: pytest.FixtureRequest):
    """Fail a test that leaves tracing active or checks disabled (it would skew the next ones)."""
    yield
    leaked = []
    if session.is_active():
        leaked.append("tracing is still active")
        for recorder in list(session._sinks):
            session.deactivate(recorder)
    if switches.off_globally or switches.off_per_function:
        leaked.append("checks are still disabled")
        switches.reset()
    if tfnp_inspect.is_installed():
        tfnp_inspect.uninstall()
    if leaked:
        pytest.fail(f"{request.node.nodeid} leaked global state: {', '.join(leaked)}", pytrace=False)


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """The test must not leave Python threads running or tracing switched on."""
    before = python_threads()
    yield
    assert python_threads() <= before, f"leaked threads: {python_threads() - before}"
    assert_tracing_off()


@pytest.fixture
def process_recorder() -> Iterator[npi.Recorder]:
    """The process-wide recorder, given back empty, uninstalled and with default options."""
    rec = npi.recorder()
    defaults = Options()
    try:
        yield rec
    finally:
        npi.uninstall()
        rec.configure(
            capacity=defaults.capacity, capture=defaults.capture,
            max_capture_bytes=defaults.max_capture_bytes, checks=defaults.checks, strict=defaults.strict,
        )
        rec.clear()
