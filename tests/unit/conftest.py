"""The unit tier runs with TensorFlow not importable: records are fabricated (``fabricate.py``).

When a session collects only this tier (``bash tests/run.sh tests/unit``, which ``tests/run.sh``
also runs first, in a process of its own), an import finder makes ``import tensorflow`` raise
ImportError and every test checks that TensorFlow never got in. In a session that also
collects the TensorFlow tiers (plain ``pytest``), those tiers have imported TensorFlow already:
the tests run all the same, without the block.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

TIER = Path(__file__).resolve().parent
BLOCKED = ("tensorflow", "tensorflow_core", "tf_keras", "keras")


class BlockTensorFlow(importlib.abc.MetaPathFinder):
    """Refuses TensorFlow (and Keras, which imports it) with the ImportError of a missing package."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname.partition(".")[0] in BLOCKED:
            raise ImportError(f"{fullname} is blocked in the unit tier (tests/unit)", name=fullname)
        return None


_blocker = BlockTensorFlow()


def _only_this_tier(config: pytest.Config) -> bool:
    """Whether every path the session was asked to collect lies inside this tier."""
    base = config.invocation_params.dir
    paths = [Path(base, arg.split("::")[0]).resolve() for arg in config.args]
    return bool(paths) and all(path == TIER or TIER in path.parents for path in paths)


def pytest_configure(config: pytest.Config) -> None:
    if not _only_this_tier(config):
        return
    loaded = sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)
    if loaded:
        raise pytest.UsageError(
            f"the unit tier must run without TensorFlow, but {', '.join(loaded)} was imported "
            "before its tests (by tests/conftest.py or by `import tfnp_inspect`?)"
        )
    sys.meta_path.insert(0, _blocker)
    config.stash[_BLOCKING] = True


_BLOCKING = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def _tensorflow_stays_out(request: pytest.FixtureRequest) -> Iterator[None]:
    """With the block on: the test (and what it imported) left TensorFlow out of the process."""
    yield
    if request.config.stash.get(_BLOCKING, False):
        loaded = [name for name in BLOCKED if name in sys.modules]
        assert not loaded, f"{request.node.nodeid} imported {loaded} (the unit tier must not)"
