"""Fixtures of the TensorFlow-backed tier (helpers in ``core_helpers.py``, next to this file)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tfnp_inspect as npi
from tfnp_inspect.model.options import Options

from core_helpers import assert_tracing_off, python_threads


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
