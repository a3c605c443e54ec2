"""Suite-wide guards for every tier: quiet TensorFlow, and no test may leave tracing switched on.

Imports tfnp_inspect, never TensorFlow: the unit tier (``tests/unit``) runs with TensorFlow
blocked. Tier-specific fixtures live in each tier's own ``conftest.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

import tfnp_inspect
from tfnp_inspect.checks.switches import switches
from tfnp_inspect.recording import session


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
