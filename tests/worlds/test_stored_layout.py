"""The stored layout is a promise (STYLE.md): what a new SQL world creates is what
``snapshots/worlds/*.sql`` shows, and a database written by wfkit 0.1.0
(``tests/golden/databases``) opens (migrated in place to that same layout), reads
back consistent with its own event log, and takes new events. The migration itself
is tested in ``test_migrations.py``; its in-flight runs completing with real
workers in ``tests/golden/test_upgrade.py``."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
from syrupy.location import PyTestLocation
from syrupy.types import SerializableData, SnapshotIndex

from tests.conftest import postgres_url
from tests.golden.restore import IN_FLIGHT_TOKEN, POSTGRES_0_1_SCHEMA, copy_local_0_1, postgres_0_1
from tests.worlds.layouts import postgres_layout, sqlite_layout
from wfkit.worlds.base import EventRequest, World, diff_run_records
from wfkit.worlds.local import LocalWorld
from wfkit.worlds.postgres import PostgresWorld

ROOT = Path(__file__).resolve().parents[2]
URL = postgres_url()
needs_server = pytest.mark.skipif(not URL, reason="WFKIT_TEST_POSTGRES_URL is not set")


class _LayoutSnapshot(SingleFileSnapshotExtension):
    """``snapshots/worlds/<name>.sql``: the layout, reviewed like code."""

    _write_mode = WriteMode.TEXT
    _file_extension = "sql"
    file_extension = "sql"

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(ROOT / "snapshots" / "worlds")

    @classmethod
    def get_snapshot_name(cls, *, test_location: PyTestLocation, index: SnapshotIndex = 0) -> str:
        return str(index)

    def serialize(self, data: SerializableData, **kwargs: Any) -> str:
        return str(data)

    @classmethod
    def write_snapshot(cls, **kwargs: Any) -> None:
        # Named after the database, not the test: syrupy warns that it cannot relate
        # the file to the test, and warnings are errors here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"\s*Can not relate snapshot")
            super().write_snapshot(**kwargs)


@pytest.fixture
def layout_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(_LayoutSnapshot)


def test_a_new_local_database_gets_the_declared_layout(
    tmp_path: Path, layout_snapshot: SnapshotAssertion
) -> None:
    LocalWorld(tmp_path / "w.db").close()
    assert sqlite_layout(tmp_path / "w.db") == layout_snapshot(name="local")


@pytest.mark.postgres
@needs_server
def test_a_new_postgres_schema_gets_the_declared_layout(layout_snapshot: SnapshotAssertion) -> None:
    assert URL
    schema = f"wfkit_layout_{secrets.token_hex(4)}"
    world = PostgresWorld(URL, schema=schema)
    try:
        assert postgres_layout(URL, schema) == layout_snapshot(name="postgres")
    finally:
        world.drop_schema()
        world.close()


# --- a database written by wfkit 0.1.0 --------------------------------------------


def _check_a_world_left_by_0_1(world: World) -> None:
    """The golden worlds hold three runs (tests/golden/README.md): one waiting on a
    hook, one finished, one queued but never picked up."""
    runs = {run.status: run for run in world.runs.list()}
    assert sorted(runs) == ["completed", "pending", "running"]
    for run in runs.values():
        assert diff_run_records(world, run.run_id) == [], run.run_id
        assert world.events.list(run.run_id)[0].event_type == "run_created"
    hook = world.hooks.get_by_token(IN_FLIGHT_TOKEN)
    assert hook.run_id == runs["running"].run_id and hook.status == "active"
    assert runs["pending"].run_id in world.queue.live_run_ids()
    assert any(step.status == "completed" for step in world.steps.list(runs["completed"].run_id))

    # Today's code keeps writing to the old store: the hook fires, the run finishes,
    # finishing releases the hook, and the records still equal the fold of the log.
    run_id = runs["running"].run_id
    world.events.create(
        run_id,
        EventRequest(
            event_type="hook_received",
            correlation_id=hook.hook_id,
            data={"payload": {"ok": True, "note": "after the upgrade \u0000"}},
        ),
    )
    world.events.create(run_id, EventRequest(event_type="run_completed", data={"output": 1}))
    assert world.runs.get(run_id).status == "completed"
    assert world.hooks.get(hook.hook_id).status == "disposed"
    assert world.events.list(run_id)[-2].data["payload"]["note"] == "after the upgrade \u0000"
    assert diff_run_records(world, run_id) == []


def test_a_local_database_written_by_0_1_keeps_working(tmp_path: Path) -> None:
    path = copy_local_0_1(tmp_path / "wfkit.db")
    world = LocalWorld(path)  # migrated in place
    try:
        _check_a_world_left_by_0_1(world)
    finally:
        world.close()
    layout = sqlite_layout(path)
    LocalWorld(path).close()
    assert sqlite_layout(path) == layout, "opening an up-to-date file changed its layout"


@pytest.fixture
def golden_postgres_url() -> Iterator[str]:
    """A scratch database holding the 0.1.0 dump (its schema is ``wfkit``)."""
    assert URL
    with postgres_0_1(URL) as url:
        yield url


@pytest.mark.postgres
@needs_server
def test_a_postgres_schema_written_by_0_1_keeps_working(golden_postgres_url: str) -> None:
    world = PostgresWorld(golden_postgres_url, schema=POSTGRES_0_1_SCHEMA)  # migrated in place
    try:
        _check_a_world_left_by_0_1(world)
    finally:
        world.close()
    layout = postgres_layout(golden_postgres_url, POSTGRES_0_1_SCHEMA)
    PostgresWorld(golden_postgres_url, schema=POSTGRES_0_1_SCHEMA).close()
    assert postgres_layout(golden_postgres_url, POSTGRES_0_1_SCHEMA) == layout
