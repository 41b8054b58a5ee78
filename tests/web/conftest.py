"""The inspector tests' world (memory, local SQLite, Postgres) and helper registration."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import postgres_url
from tests.web import web_helpers
from wfkit.worlds.base import World

PG_MARKS = [
    pytest.mark.postgres,
    pytest.mark.skipif(not postgres_url(), reason="WFKIT_TEST_POSTGRES_URL not set (CI sets it)"),
]


@pytest.fixture(autouse=True)
def helpers() -> Iterator[ModuleType]:
    """(Re-)register the helper workflows: other tests may clear the registry."""
    yield importlib.reload(web_helpers)


@pytest.fixture(params=["memory", "local", pytest.param("postgres", marks=PG_MARKS)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A fresh world of each kind (Postgres: a schema of its own, dropped after)."""
    if request.param == "memory":
        from wfkit.worlds.memory import MemoryWorld

        instance: World = MemoryWorld()
        yield instance
        instance.close()
    elif request.param == "local":
        from wfkit.worlds.local import LocalWorld

        instance = LocalWorld.from_spec(f"sqlite:///{tmp_path / 'wfkit.db'}")
        yield instance
        instance.close()
    else:
        from wfkit.worlds.postgres import PostgresWorld

        url = postgres_url()
        assert url
        schema = f"web_{uuid.uuid4().hex[:12]}"
        postgres = PostgresWorld(f"{url}{'&' if '?' in url else '?'}schema={schema}")
        yield postgres
        postgres.drop_schema()
        postgres.close()
