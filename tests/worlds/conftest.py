"""Fixtures for the world conformance suite: one ``world`` per registered world."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import postgres_url
from wfkit.worlds.base import World
from wfkit.worlds.testing import WORLD_FACTORIES, WorldFactory


def _params() -> list[object]:
    params: list[object] = []
    for name, factory in WORLD_FACTORIES.items():
        marks = []
        if name == "postgres":
            no_server = pytest.mark.skipif(
                not postgres_url(), reason="WFKIT_TEST_POSTGRES_URL not set (CI sets it)"
            )
            marks = [pytest.mark.postgres, no_server]
        params.append(pytest.param(factory, id=name, marks=marks))
    return params


@pytest.fixture(params=_params())
def world_factory(request: pytest.FixtureRequest) -> WorldFactory:
    """The factory of the world under test (postgres is skipped without a server)."""
    factory: WorldFactory = request.param
    return factory


@pytest.fixture
def world(world_factory: WorldFactory, tmp_path: Path) -> Iterator[World]:
    """A fresh, empty world; closed after the test."""
    instance = world_factory.make(tmp_path)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def postgres_world(tmp_path: Path) -> Iterator[World]:
    """A fresh, empty Postgres world (skipped without a server); closed after the test."""
    if not postgres_url():
        pytest.skip("WFKIT_TEST_POSTGRES_URL not set")
    instance = WORLD_FACTORIES["postgres"].make(tmp_path)
    try:
        yield instance
    finally:
        instance.close()
