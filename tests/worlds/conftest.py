"""Fixtures for the world conformance suite: one ``world`` per registered world."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import postgres_url
from worlds.base import World
from worlds.testing import WORLD_FACTORIES, WorldFactory


def _params() -> list[object]:
    params: list[object] = []
    for name, factory in WORLD_FACTORIES.items():
        marks = [pytest.mark.postgres] if name == "postgres" else []
        params.append(pytest.param(factory, id=name, marks=marks))
    return params


@pytest.fixture(params=_params())
def world_factory(request: pytest.FixtureRequest) -> WorldFactory:
    """The factory of the world under test (skips postgres without a server)."""
    factory: WorldFactory = request.param
    if factory.name == "postgres" and not postgres_url():
        pytest.skip("WFKIT_TEST_POSTGRES_URL is not set")
    return factory


@pytest.fixture
def world(world_factory: WorldFactory, tmp_path: Path) -> Iterator[World]:
    """A fresh, empty world; closed after the test."""
    instance = world_factory.make(tmp_path)
    try:
        yield instance
    finally:
        instance.close()
