"""Fixtures of the Jupyter tier: one real IPython shell, with the extension loaded per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import tfnp_inspect as npi


@pytest.fixture(scope="module")
def ipython() -> InteractiveShell:
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("colors", "nocolor")
    return shell


@pytest.fixture
def shell(ipython: InteractiveShell, request: pytest.FixtureRequest) -> Iterator[InteractiveShell]:
    """The shell with ``%load_ext tfnp_inspect`` done and the test module's DEFINITIONS run."""
    ipython.run_line_magic("load_ext", "tfnp_inspect")
    assert ipython.run_cell(request.module.DEFINITIONS, store_history=True).success
    try:
        yield ipython
    finally:
        ipython.run_line_magic("unload_ext", "tfnp_inspect")
        npi.uninstall()
        npi.recorder().clear()
