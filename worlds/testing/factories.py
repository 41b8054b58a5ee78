"""The registry of worlds the conformance suite runs against."""

from __future__ import annotations

import importlib
import importlib.util
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wfkit.worlds.base import World

__all__ = ["WORLD_FACTORIES", "WorldFactory"]


@dataclass(frozen=True)
class WorldFactory:
    """How the suite makes a world.

    Attributes:
        name: the pytest id (``memory``, ``local``, ``postgres``).
        make: builds a fresh, empty world; gets a per-test temporary directory.
        spec: a ``wfkit.worlds.create_world`` spec that reopens the world ``make``
            built in that directory from another process, or None for an
            in-process-only world (cross-process tests are then skipped).
    """

    name: str
    make: Callable[[Path], World]
    spec: Callable[[Path], str] | None = None


def _memory(tmp_path: Path) -> World:
    world = importlib.import_module("wfkit.worlds.memory").MemoryWorld()
    assert isinstance(world, World)
    return world


def _local(tmp_path: Path) -> World:
    module = importlib.import_module("wfkit.worlds.local")
    world = module.LocalWorld(tmp_path / "wfkit.db")
    assert isinstance(world, World)
    return world


_POSTGRES_SCHEMA = f"wfkit_test_{os.getpid()}_{secrets.token_hex(3)}"


def postgres_test_url() -> str:
    """The Postgres server of the test run (``WFKIT_TEST_POSTGRES_URL``), with a schema
    of this test process's own (``?schema=``) so parallel runs never collide."""
    url = os.environ["WFKIT_TEST_POSTGRES_URL"]
    return f"{url}{'&' if '?' in url else '?'}schema={_POSTGRES_SCHEMA}"


def _postgres(tmp_path: Path) -> World:
    # Imported by name: the postgres world is optional and written separately.
    module = importlib.import_module("wfkit.worlds.postgres")
    world = module.PostgresWorld(postgres_test_url())
    world.reset()  # a fresh, empty schema for every test
    assert isinstance(world, World)
    return world


WORLD_FACTORIES: dict[str, WorldFactory] = {"memory": WorldFactory("memory", _memory)}
"""Every world the suite runs against, by pytest id. ``postgres`` joins as soon
as ``wfkit.worlds.postgres`` exists; its tests need ``WFKIT_TEST_POSTGRES_URL``."""

if importlib.util.find_spec("wfkit.worlds.local") is not None:
    WORLD_FACTORIES["local"] = WorldFactory(
        "local", _local, lambda tmp: f"sqlite:///{tmp / 'wfkit.db'}"
    )
if importlib.util.find_spec("wfkit.worlds.postgres") is not None:
    WORLD_FACTORIES["postgres"] = WorldFactory(
        "postgres", _postgres, lambda tmp: postgres_test_url()
    )
