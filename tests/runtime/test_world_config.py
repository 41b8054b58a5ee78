"""``resolve_world`` with a spec string: one world per spec, not a new pool per call; the
local world is the project root's, from any subdirectory."""

from __future__ import annotations

import gc
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import postgres_url
from tests.runtime import wf_helpers
from wfkit.runtime import world_config
from wfkit.runtime.api.client import get_run, start_sync
from wfkit.worlds.base import World


@pytest.fixture
def spec_worlds(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, World]]:
    """An empty spec cache for the test; every world it built is closed afterwards."""
    built: dict[str, World] = {}
    monkeypatch.setattr(world_config, "_by_spec", built, raising=False)
    try:
        yield built
    finally:
        for world in built.values():
            world.close()


def test_a_spec_string_resolves_to_one_world(spec_worlds: dict[str, World]) -> None:
    first = world_config.resolve_world("memory")
    assert world_config.resolve_world("memory") is first
    assert world_config.get_world("memory") is first
    assert list(spec_worlds) == ["memory"]


@pytest.mark.postgres
@pytest.mark.skipif(not postgres_url(), reason="WFKIT_TEST_POSTGRES_URL not set (CI sets it)")
def test_calls_naming_a_postgres_url_share_one_world(spec_worlds: dict[str, World]) -> None:
    """Per-call ``world="postgresql://…"`` used to build (and never close) a PostgresWorld
    each time: its pooled connection was garbage-collected open (a ResourceWarning)."""
    url = postgres_url()
    assert url
    spec = f"{url}{'&' if '?' in url else '?'}schema=wcfg_{uuid.uuid4().hex[:10]}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            runs = [start_sync(wf_helpers.sleeper, 30, world=spec) for _ in range(3)]
            runs.append(get_run(runs[0].run_id, world=spec))
            assert len({id(run.world) for run in runs}) == 1
            assert list(spec_worlds) == [spec]
            del runs
            gc.collect()  # before the fix: the dropped worlds' connections, found open
    finally:
        world = spec_worlds.get(spec)
        if world is not None:
            drop = getattr(world, "drop_schema", None)
            if callable(drop):
                drop()


def test_the_local_world_opens_at_the_project_root_from_a_subdirectory(
    spec_worlds: dict[str, World], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``wfkit inspect runs`` from ``app/sub`` used to create a second, empty database there."""
    (tmp_path / "pyproject.toml").write_text("")
    sub = tmp_path / "app" / "sub"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    monkeypatch.delenv("WFKIT_WORLD", raising=False)
    world = world_config.resolve_world("local")
    assert world.path == tmp_path.resolve() / ".wfkit" / "wfkit.db"  # type: ignore[attr-defined]
    assert (tmp_path / ".wfkit" / ".gitignore").read_text() == "*\n"
    assert not (sub / ".wfkit").exists()


def test_the_default_world_is_the_projects_local_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "pkg").mkdir()
    monkeypatch.chdir(tmp_path / "pkg")
    monkeypatch.delenv("WFKIT_WORLD", raising=False)
    monkeypatch.setattr(world_config, "_world", None)
    world = world_config.get_world()
    try:
        assert world.path == tmp_path.resolve() / ".wfkit" / "wfkit.db"  # type: ignore[attr-defined]
        assert not (tmp_path / "pkg" / ".wfkit").exists()
    finally:
        world.close()
