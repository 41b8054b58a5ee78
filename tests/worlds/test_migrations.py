"""Upgrading wfkit loses nothing (DESIGN §6a): a store written by an earlier version is
migrated in place to the layout a new store gets, once, under a lock, atomically;
a store this code cannot vouch for (newer, an invalid version, no version row) is
refused in one line and left as it was.

The old stores are the ones wfkit 0.1.0 wrote (``tests/golden/databases``, schema
version 1). That their in-flight runs then complete on real workers is
``tests/golden/test_upgrade.py``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import postgres_url
from tests.golden.restore import POSTGRES_0_1_SCHEMA, copy_local_0_1, postgres_0_1
from tests.worlds.layouts import (
    postgres_layout,
    postgres_structure,
    sqlite_layout,
    sqlite_structure,
)
from wfkit.worlds.base import SchemaVersionError, WorldError, diff_run_records
from wfkit.worlds.local import LocalWorld
from wfkit.worlds.postgres import PostgresWorld
from wfkit.worlds.sql import SCHEMA_VERSION
from wfkit.worlds.sql.migrations import CREATED_SUMMARY, MIGRATIONS, plan_migrations

ROOT = Path(__file__).resolve().parents[2]
URL = postgres_url()
needs_server = pytest.mark.skipif(not URL, reason="WFKIT_TEST_POSTGRES_URL is not set")
STEPS_FROM_0_1 = [(step.version, step.summary) for step in MIGRATIONS]
"""``schema_history`` of a 0.1.0 store after one migration: each step once."""


# --- judging a stored version ---------------------------------------------------------


def test_an_up_to_date_store_needs_nothing_and_an_empty_one_is_created() -> None:
    assert plan_migrations(SCHEMA_VERSION, has_tables=True, store="s").up_to_date
    created = plan_migrations(None, has_tables=False, store="s")
    assert created.create and not created.steps


def test_an_old_store_gets_every_later_step_in_order() -> None:
    plan = plan_migrations(1, has_tables=True, store="s")
    assert not plan.create
    assert [step.version for step in plan.steps] == list(range(2, SCHEMA_VERSION + 1))


@pytest.mark.parametrize(
    ("found", "has_tables", "message"),
    [
        (SCHEMA_VERSION + 1, True, rf"uses schema version {SCHEMA_VERSION + 1}.*upgrade wfkit"),
        (0, True, r"records schema version 0, which no wfkit writes"),
        (-3, True, r"records schema version -3, which no wfkit writes"),
        ("2", True, r"records schema version '2', which no wfkit writes"),
        (True, True, r"records schema version True, which no wfkit writes"),
        (None, True, r"holds wfkit tables but no schema version row"),
    ],
)
def test_a_store_this_code_cannot_vouch_for_is_refused_in_one_line(
    found: object, has_tables: bool, message: str
) -> None:
    with pytest.raises(SchemaVersionError, match=message) as refused:
        plan_migrations(found, has_tables=has_tables, store="the store")
    assert "\n" not in str(refused.value)
    assert str(refused.value).startswith("the store ")


# --- two processes opening one old store at once ------------------------------------

_OPEN_TOGETHER = """
import json, sys, time
from pathlib import Path
import wfkit.worlds.local.migrate as local_migrate
import wfkit.worlds.postgres.migrate as postgres_migrate
from wfkit.worlds import create_world
from wfkit.worlds.base import EventRequest

spec, barrier, me, hold = sys.argv[1], Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])

def held(apply):
    # The migrating process keeps its lock a while after each step, so the other
    # one surely arrives while the migration is under way.
    def apply_and_hold(*args):
        apply(*args)
        time.sleep(hold)
    return apply_and_hold

local_migrate._apply_step = held(local_migrate._apply_step)
postgres_migrate._apply_step = held(postgres_migrate._apply_step)
(barrier / me).touch()
while len(list(barrier.iterdir())) < 2:
    time.sleep(0.002)
began = time.monotonic()
world = create_world(spec)
opened_in = time.monotonic() - began
created = world.events.create(
    None, EventRequest(event_type="run_created", data={"workflow_name": "after-" + me})
)
run_id = created.run.run_id
world.events.create(run_id, EventRequest(event_type="run_started"))
world.events.create(run_id, EventRequest(event_type="run_completed", data={"output": me}))
print(json.dumps({"opened_in": opened_in, "run_id": run_id,
                  "status": world.runs.get(run_id).status}))
world.close()
"""

HOLD_SECONDS = 1.0


def _open_together(spec: str, tmp_path: Path) -> list[dict[str, Any]]:
    """Two processes open the world ``spec`` at the same moment and each runs a run."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_TOGETHER, spec, str(barrier), me, str(HOLD_SECONDS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for me in ("a", "b")
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    return reports


def _check_migrated_once(reports: list[dict[str, Any]], history: list[tuple[int, str]]) -> None:
    assert history == STEPS_FROM_0_1, "the store was not migrated exactly once"
    # Both were held up by the one migration: the second waited for the first's lock
    # (had it not, it would have opened at once, or migrated a second time).
    assert min(report["opened_in"] for report in reports) >= HOLD_SECONDS * 0.9, reports
    assert [report["status"] for report in reports] == ["completed", "completed"]


def _sqlite_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def _sqlite_history(path: Path) -> list[tuple[int, str]]:
    rows = _sqlite_rows(path, "SELECT version, summary FROM schema_history ORDER BY seq")
    return [(version, summary) for version, summary in rows]


def test_two_processes_opening_an_old_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = copy_local_0_1(tmp_path / "wfkit.db")
    reports = _open_together(f"sqlite:///{path}", tmp_path)
    _check_migrated_once(reports, _sqlite_history(path))
    assert _sqlite_rows(path, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    world = LocalWorld(path)
    try:
        for report in reports:
            assert world.runs.get(report["run_id"]).status == "completed"
            assert diff_run_records(world, report["run_id"]) == []
    finally:
        world.close()


# --- the migrated layout ---------------------------------------------------------------


def test_a_migrated_0_1_file_has_the_layout_of_a_new_one(tmp_path: Path) -> None:
    old = copy_local_0_1(tmp_path / "old.db")
    assert _sqlite_rows(old, "SELECT version FROM schema_version") == [(1,)]
    LocalWorld(old).close()
    LocalWorld(tmp_path / "new.db").close()
    assert sqlite_structure(old) == sqlite_structure(tmp_path / "new.db")
    assert _sqlite_history(old) == STEPS_FROM_0_1
    assert _sqlite_history(tmp_path / "new.db") == [(SCHEMA_VERSION, CREATED_SUMMARY)]
    applied = _sqlite_rows(old, "SELECT applied_at FROM schema_history")
    assert len(applied) == len(STEPS_FROM_0_1)
    # Stored as every SQLite time is.
    assert all(applied_at.endswith("+00:00") for (applied_at,) in applied)


# --- refusals and failures leave the file as it was ----------------------------------

_DAMAGE: dict[str, tuple[str, str]] = {
    "newer": (f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}", "upgrade wfkit"),
    "zero": ("UPDATE schema_version SET version = 0", "which no wfkit writes"),
    "negative": ("UPDATE schema_version SET version = -1", "which no wfkit writes"),
    "text": ("UPDATE schema_version SET version = 'two'", "which no wfkit writes"),
    "no row": ("DELETE FROM schema_version", "no schema version row"),
    "no table": ("DROP TABLE schema_version", "no schema version row"),
}


@pytest.mark.parametrize("damage", list(_DAMAGE), ids=list(_DAMAGE))
def test_a_file_with_a_version_this_code_cannot_vouch_for_is_refused_untouched(
    tmp_path: Path, damage: str
) -> None:
    path = copy_local_0_1(tmp_path / "wfkit.db")
    statement, message = _DAMAGE[damage]
    connection = sqlite3.connect(path)
    connection.execute(statement)
    connection.commit()
    connection.close()
    layout, runs = sqlite_layout(path), _sqlite_rows(path, "SELECT * FROM runs")
    with pytest.raises(SchemaVersionError, match=message) as refused:
        LocalWorld(path)
    assert "\n" not in str(refused.value) and str(path) in str(refused.value)
    assert sqlite_layout(path) == layout
    assert _sqlite_rows(path, "SELECT * FROM runs") == runs


def test_a_failed_migration_leaves_the_file_at_its_old_version(tmp_path: Path) -> None:
    path = copy_local_0_1(tmp_path / "wfkit.db")
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE schema_history (note TEXT)")  # in the step's way
    connection.commit()
    connection.close()
    layout = sqlite_layout(path)
    with pytest.raises(WorldError, match="schema_history already exists"):
        LocalWorld(path)
    assert sqlite_layout(path) == layout, "a step that failed half-way left changes behind"
    assert _sqlite_rows(path, "SELECT version FROM schema_version") == [(1,)]

    connection = sqlite3.connect(path)
    connection.execute("DROP TABLE schema_history")
    connection.commit()
    connection.close()
    LocalWorld(path).close()  # the next open migrates
    assert _sqlite_history(path) == STEPS_FROM_0_1


# --- Postgres ------------------------------------------------------------------------


@pytest.fixture
def old_schema_url() -> Iterator[str]:
    """A scratch database holding the 0.1.0 dump (schema ``wfkit``, version 1)."""
    assert URL
    with postgres_0_1(URL) as url:
        yield url


def _pg(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(sql.replace("<s>", f'"{POSTGRES_0_1_SCHEMA}"').encode())
        return cursor.fetchall() if cursor.description else []


def _pg_advisory_locks(url: str) -> int:
    """Advisory locks held in this database (pg_locks lists the whole server's)."""
    [(count,)] = _pg(
        url,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database ="
        " (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    return int(count)


def _pg_history(url: str) -> list[tuple[int, str]]:
    rows = _pg(url, "SELECT version, summary FROM <s>.schema_history ORDER BY seq")
    return [(version, summary) for version, summary in rows]


def _open_postgres(url: str) -> None:
    PostgresWorld(url, schema=POSTGRES_0_1_SCHEMA).close()


@contextmanager
def _transactions_going_on(url: str) -> Iterator[None]:
    """Other sessions committing meanwhile (as live workers do), so the transaction
    ids move on: a concurrent index build then waits for every older snapshot."""
    stop = threading.Event()

    def commit_transactions() -> None:
        with psycopg.connect(url, autocommit=True) as connection:
            while not stop.is_set():
                connection.execute("SELECT txid_current()")
                time.sleep(0.005)

    thread = threading.Thread(target=commit_transactions)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@pytest.mark.postgres
@needs_server
def test_two_processes_opening_an_old_schema_at_once_migrate_it_once(
    old_schema_url: str, tmp_path: Path
) -> None:
    with _transactions_going_on(old_schema_url):
        reports = _open_together(f"{old_schema_url}?schema={POSTGRES_0_1_SCHEMA}", tmp_path)
    _check_migrated_once(reports, _pg_history(old_schema_url))
    assert _pg(old_schema_url, "SELECT version FROM <s>.schema_version") == [(SCHEMA_VERSION,)]
    world = PostgresWorld(old_schema_url, schema=POSTGRES_0_1_SCHEMA)
    try:
        for report in reports:
            assert world.runs.get(report["run_id"]).status == "completed"
            assert diff_run_records(world, report["run_id"]) == []
    finally:
        world.close()


@pytest.mark.postgres
@needs_server
def test_a_world_that_migrated_holds_no_lock_afterwards(old_schema_url: str) -> None:
    # The migration lock is a session lock on a connection of the world's pool: were it
    # not released, the open world would keep every later migration waiting.
    world = PostgresWorld(old_schema_url, schema=POSTGRES_0_1_SCHEMA, pool_size=1)
    try:
        assert _pg(old_schema_url, "SELECT version FROM <s>.schema_version") == [(SCHEMA_VERSION,)]
        assert world.runs.list(status="pending")
        assert _pg_advisory_locks(old_schema_url) == 0
    finally:
        world.close()


@pytest.mark.postgres
@needs_server
def test_a_migrated_0_1_schema_has_the_layout_of_a_new_one(old_schema_url: str) -> None:
    assert _pg(old_schema_url, "SELECT version FROM <s>.schema_version") == [(1,)]
    _open_postgres(old_schema_url)
    new = PostgresWorld(old_schema_url, schema="wfkit_new")
    try:
        assert postgres_structure(old_schema_url, POSTGRES_0_1_SCHEMA) == postgres_structure(
            old_schema_url, "wfkit_new"
        )
        with psycopg.connect(old_schema_url) as connection:
            created = connection.execute(
                "SELECT version, summary FROM wfkit_new.schema_history"
            ).fetchall()
        assert created == [(SCHEMA_VERSION, CREATED_SUMMARY)]
    finally:
        new.close()
    assert _pg_history(old_schema_url) == STEPS_FROM_0_1
    invalid = _pg(old_schema_url, "SELECT count(*) FROM pg_index WHERE NOT indisvalid")
    assert invalid == [(0,)]


_PG_DAMAGE: dict[str, tuple[str, str]] = {
    "newer": (f"UPDATE <s>.schema_version SET version = {SCHEMA_VERSION + 1}", "upgrade wfkit"),
    "zero": ("UPDATE <s>.schema_version SET version = 0", "which no wfkit writes"),
    "negative": ("UPDATE <s>.schema_version SET version = -1", "which no wfkit writes"),
    "no row": ("DELETE FROM <s>.schema_version", "no schema version row"),
}


@pytest.mark.postgres
@needs_server
@pytest.mark.parametrize("damage", list(_PG_DAMAGE), ids=list(_PG_DAMAGE))
def test_a_schema_with_a_version_this_code_cannot_vouch_for_is_refused_untouched(
    old_schema_url: str, damage: str
) -> None:
    statement, message = _PG_DAMAGE[damage]
    _pg(old_schema_url, statement)
    layout = postgres_layout(old_schema_url, POSTGRES_0_1_SCHEMA)
    runs = _pg(old_schema_url, "SELECT * FROM <s>.runs ORDER BY run_id")
    with pytest.raises(SchemaVersionError, match=message) as refused:
        _open_postgres(old_schema_url)
    assert "\n" not in str(refused.value) and "'wfkit'" in str(refused.value)
    assert postgres_layout(old_schema_url, POSTGRES_0_1_SCHEMA) == layout
    assert _pg(old_schema_url, "SELECT * FROM <s>.runs ORDER BY run_id") == runs


@pytest.mark.postgres
@needs_server
def test_an_index_build_left_invalid_by_an_interruption_is_built_again(
    old_schema_url: str,
) -> None:
    # A concurrent build that fails (here: UNIQUE over duplicate values) leaves an
    # invalid index behind under its name, as a process killed mid-build does.
    name = MIGRATIONS[0].postgresql_indexes[0].name
    with pytest.raises(psycopg.errors.UniqueViolation):
        _pg(old_schema_url, f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON <s>.runs (spec_version)")
    assert _pg(old_schema_url, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == [(1,)]
    _open_postgres(old_schema_url)
    assert _pg(old_schema_url, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == [(0,)]
    [(definition,)] = _pg(
        old_schema_url, f"SELECT indexdef FROM pg_indexes WHERE indexname = '{name}'"
    )
    assert definition.endswith(f"({MIGRATIONS[0].postgresql_indexes[0].columns})")


@pytest.mark.postgres
@needs_server
def test_a_failed_step_leaves_the_schema_at_its_old_version(old_schema_url: str) -> None:
    _pg(old_schema_url, "CREATE TABLE <s>.schema_history (note text)")  # in the step's way
    with pytest.raises(WorldError, match=r"to version 2 failed \(it stays at version 1\)"):
        _open_postgres(old_schema_url)
    assert _pg(old_schema_url, "SELECT version FROM <s>.schema_version") == [(1,)]
    _pg(old_schema_url, "DROP TABLE <s>.schema_history")
    _open_postgres(old_schema_url)  # the next open finishes the step
    assert _pg_history(old_schema_url) == STEPS_FROM_0_1
