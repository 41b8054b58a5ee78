"""The stored layout is a promise (STYLE.md): what a new SQL world creates is what
``snapshots/worlds/*.sql`` shows, and a database written by wfkit 0.1.0
(``tests/golden/databases``) opens unchanged, reads back consistent with its own
event log, and takes new events."""

from __future__ import annotations

import re
import secrets
import shutil
import sqlite3
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
from syrupy.location import PyTestLocation
from syrupy.types import SerializableData, SnapshotIndex

from tests.conftest import postgres_url
from wfkit.worlds.base import EventRequest, World, diff_run_records
from wfkit.worlds.local import LocalWorld
from wfkit.worlds.postgres import PostgresWorld

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "databases"
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


def _sqlite_layout(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT type, name, sql FROM sqlite_master"
            " WHERE name NOT LIKE 'sqlite_%' ORDER BY type DESC, name"
        ).fetchall()
    finally:
        connection.close()
    return "".join(f"-- {kind} {name}\n{sql};\n\n" for kind, name, sql in rows)


_CATALOG = {
    "columns": """SELECT table_name, column_name, data_type, is_nullable, column_default,
        is_identity FROM information_schema.columns WHERE table_schema = %(s)s
        ORDER BY table_name, ordinal_position""",
    "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = %(s)s::regnamespace ORDER BY 1, 2""",
    "indexes": """SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = %(s)s ORDER BY 1, 2""",
    "triggers": """SELECT event_object_table, trigger_name, event_manipulation,
        action_timing, action_orientation, action_statement
        FROM information_schema.triggers WHERE trigger_schema = %(s)s ORDER BY 1, 2, 3""",
    "functions": """SELECT proname, pg_get_functiondef(oid) FROM pg_proc
        WHERE pronamespace = %(s)s::regnamespace ORDER BY 1""",
}


def _postgres_layout(url: str, schema: str) -> str:
    """The schema as the server's catalog describes it (names made schema-neutral)."""
    lines: list[str] = []
    with psycopg.connect(url) as connection:
        for section, query in _CATALOG.items():
            lines.append(f"-- {section}")
            for row in connection.execute(query, {"s": schema}):
                lines.append(" | ".join(str(value) for value in row))
            lines.append("")
    text = "\n".join(lines).replace(schema, "<schema>")
    return re.sub(r"wfkit_([qs])_[0-9a-f]{24}", r"wfkit_\1_<digest>", text)


def test_a_new_local_database_gets_the_declared_layout(
    tmp_path: Path, layout_snapshot: SnapshotAssertion
) -> None:
    LocalWorld(tmp_path / "w.db").close()
    assert _sqlite_layout(tmp_path / "w.db") == layout_snapshot(name="local")


@pytest.mark.postgres
@needs_server
def test_a_new_postgres_schema_gets_the_declared_layout(layout_snapshot: SnapshotAssertion) -> None:
    assert URL
    schema = f"wfkit_layout_{secrets.token_hex(4)}"
    world = PostgresWorld(URL, schema=schema)
    try:
        assert _postgres_layout(URL, schema) == layout_snapshot(name="postgres")
    finally:
        world.drop_schema()
        world.close()


# --- a database written by wfkit 0.1.0 --------------------------------------------

IN_FLIGHT_TOKEN = "golden-approve:o-inflight"


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
    path = tmp_path / "wfkit.db"
    shutil.copyfile(GOLDEN / "local-0.1.db", path)
    layout = _sqlite_layout(path)
    world = LocalWorld(path)
    try:
        _check_a_world_left_by_0_1(world)
    finally:
        world.close()
    assert _sqlite_layout(path) == layout, "opening an up-to-date file changed its layout"


def _load_pg_dump(url: str, dump: str) -> None:
    """Run a plain ``pg_dump`` script: SQL between its ``COPY … FROM stdin`` blocks
    as scripts, each block's rows through the COPY protocol; psql's own
    backslash commands (``\\restrict``) are skipped."""
    with psycopg.connect(url, autocommit=True) as connection:
        script: list[str] = []

        def flush() -> None:
            if any(line.strip() and not line.startswith("--") for line in script):
                connection.execute("\n".join(script).encode())
            script.clear()

        lines = iter(dump.splitlines())
        for line in lines:
            if line.startswith("COPY ") and line.endswith("FROM stdin;"):
                flush()
                with connection.cursor().copy(line.removesuffix(";").encode()) as copy:
                    for row in lines:
                        if row == "\\.":
                            break
                        copy.write(row + "\n")
            elif not line.startswith("\\"):
                script.append(line)
        flush()


@pytest.fixture
def golden_postgres_url() -> Iterator[str]:
    """A scratch database holding the 0.1.0 dump (its schema is ``wfkit``)."""
    assert URL
    server = sqlalchemy.make_url(URL)
    name = f"wfkit_golden_{secrets.token_hex(4)}"
    admin = server.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"'.encode())
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        _load_pg_dump(url, (GOLDEN / "postgres-0.1.sql").read_text())
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@pytest.mark.postgres
@needs_server
def test_a_postgres_schema_written_by_0_1_keeps_working(golden_postgres_url: str) -> None:
    layout = _postgres_layout(golden_postgres_url, "wfkit")
    world = PostgresWorld(golden_postgres_url, schema="wfkit")
    try:
        _check_a_world_left_by_0_1(world)
    finally:
        world.close()
    assert _postgres_layout(golden_postgres_url, "wfkit") == layout
