"""What only the local (SQLite) world has: specs, files, schema versions, processes."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wfkit.worlds import create_world
from wfkit.worlds.base import EventRequest, SchemaVersionError, WorldError, diff_run_records
from wfkit.worlds.local import LocalWorld
from wfkit.worlds.local.db import write_transaction
from wfkit.worlds.memory import MemoryWorld
from wfkit.worlds.sql import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]


def _run_with_step(world: LocalWorld) -> str:
    result = world.events.create(
        None, EventRequest(event_type="run_created", data={"workflow_name": "wf"})
    )
    assert result.run is not None
    run_id = result.run.run_id
    world.events.create(run_id, EventRequest(event_type="run_started"))
    world.events.create(
        run_id,
        EventRequest(event_type="step_created", correlation_id="step_a", data={"step_name": "s"}),
    )
    return run_id


def test_from_spec_local_uses_dot_wfkit_under_root(tmp_path: Path) -> None:
    world = LocalWorld.from_spec("local", root=tmp_path)
    try:
        assert world.path == (tmp_path / ".wfkit" / "wfkit.db").resolve()
        assert world.path.exists()
    finally:
        world.close()


def test_from_spec_sqlite_urls(tmp_path: Path) -> None:
    absolute = LocalWorld.from_spec(f"sqlite:///{tmp_path / 'a' / 'x.db'}")
    relative = LocalWorld.from_spec("sqlite:///rel/y.db", root=tmp_path)
    try:
        assert absolute.path == (tmp_path / "a" / "x.db").resolve()
        assert relative.path == (tmp_path / "rel" / "y.db").resolve()
    finally:
        absolute.close()
        relative.close()
    for bad in ("sqlite://", "sqlite:///:memory:", "postgres://x"):
        with pytest.raises(ValueError):
            LocalWorld.from_spec(bad)


def test_create_world_picks_the_world(tmp_path: Path) -> None:
    world = create_world(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        assert isinstance(world, LocalWorld) and world.name == "local"
    finally:
        world.close()
    assert isinstance(create_world("memory"), MemoryWorld)


def test_data_survives_reopening(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    run_id = _run_with_step(world)
    world.queue.enqueue("q", {"run_id": run_id})
    world.streams.append(run_id, "s", b"\x00\x01")
    world.close()
    again = LocalWorld(tmp_path / "w.db")
    try:
        assert again.runs.get(run_id).status == "running"
        assert again.steps.get(run_id, "step_a").status == "pending"
        assert len(again.events.list(run_id)) == 3
        assert again.queue.live_run_ids() == {run_id}
        assert again.streams.read(run_id, "s").chunks == [b"\x00\x01"]
        assert diff_run_records(again, run_id) == []
    finally:
        again.close()


def test_wal_mode(tmp_path: Path) -> None:
    LocalWorld(tmp_path / "w.db").close()
    conn = sqlite3.connect(tmp_path / "w.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    LocalWorld(tmp_path / "w.db").close()
    conn = sqlite3.connect(tmp_path / "w.db")
    conn.execute("UPDATE schema_version SET version = 999")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError, match="schema version 999"):
        LocalWorld(tmp_path / "w.db")


def test_a_newer_file_is_left_untouched(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "w.db")
    conn.execute("CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER)")
    conn.execute("INSERT INTO schema_version VALUES (1, ?)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError):
        LocalWorld(tmp_path / "w.db")
    conn = sqlite3.connect(tmp_path / "w.db")
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    finally:
        conn.close()
    assert tables == ["schema_version"]


def test_a_dropped_world_stops_its_thread(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    thread = world._checkpointer._thread  # white-box: the world's own checkpointer
    assert thread.is_alive()
    del world
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive(), "the checkpointer outlived its world"


def test_diff_run_records_finds_a_tampered_record(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    try:
        run_id = _run_with_step(world)
        assert diff_run_records(world, run_id) == []
        conn = sqlite3.connect(tmp_path / "w.db")
        conn.execute("UPDATE steps SET status = 'completed' WHERE step_id = 'step_a'")
        conn.commit()
        conn.close()
        problems = diff_run_records(world, run_id)
        assert len(problems) == 1 and "step" in problems[0]
    finally:
        world.close()


_CREATE_WORKER = """
import json, sys, time
from wfkit.worlds import create_world
from wfkit.worlds.base import EntityConflictError, EventRequest
world = create_world(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
request = EventRequest(event_type="step_created", correlation_id="step_race",
                       data={"step_name": "s"})
try:
    world.events.create(sys.argv[2], request)
    print(json.dumps("won"))
except EntityConflictError:
    print(json.dumps("lost"))
world.close()
"""


def test_processes_racing_one_creation_event(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    try:
        run_id = _run_with_step(world)
        start_at = time.time() + 1.5
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _CREATE_WORKER,
                    f"sqlite:///{tmp_path / 'w.db'}",
                    run_id,
                    str(start_at),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(4)
        ]
        outcomes = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            outcomes.append(json.loads(out))
        assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
        types = [e.event_type for e in world.events.list(run_id)]
        assert types.count("step_created") == 2  # step_a and step_race
        assert diff_run_records(world, run_id) == []
    finally:
        world.close()


def _append_from_child(world: LocalWorld, run_id: str) -> None:
    world.events.create(
        run_id,
        EventRequest(
            event_type="step_created", correlation_id="step_child", data={"step_name": "s"}
        ),
    )
    world.queue.enqueue("q", {"run_id": run_id})


def test_a_forked_child_uses_its_own_connections(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    try:
        run_id = _run_with_step(world)  # the parent's thread now holds a connection
        child = multiprocessing.get_context("fork").Process(
            target=_append_from_child, args=(world, run_id)
        )
        child.start()
        child.join(timeout=60)
        assert child.exitcode == 0
        assert world.steps.get(run_id, "step_child").status == "pending"
        assert world.queue.live_run_ids() == {run_id}
        _run_with_step(world)  # the parent's connections still work
    finally:
        world.close()


def test_wal_is_checkpointed_in_the_background(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    try:
        size_before = (tmp_path / "w.db").stat().st_size
        run_id = _run_with_step(world)
        for index in range(300):
            world.streams.append(run_id, "s", bytes(1000) + str(index).encode())
        deadline = time.monotonic() + 10
        while (tmp_path / "w.db").stat().st_size < size_before + 300_000:
            assert time.monotonic() < deadline, "the WAL was never copied into the database"
            time.sleep(0.1)
    finally:
        world.close()


def test_nested_write_transactions_fail_instead_of_hanging(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    try:
        connections = world._connections  # white-box: the hot path's connections
        with pytest.raises(WorldError), write_transaction(connections):
            with write_transaction(connections):
                pass
        assert _run_with_step(world)  # nothing stuck: the world still writes
    finally:
        world.close()
