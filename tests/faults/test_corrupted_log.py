"""A damaged event row fails its run once with ``CORRUPTED_EVENT_LOG`` (DESIGN.md §6b).

One stored ``step_completed`` row of a suspended run is damaged behind wfkit's back
(a direct UPDATE): its data made undecodable JSON, JSON that is not an object, an
object without the ``result`` every completion carries, or its type made one this
version does not know. Before the fix the run stayed ``running`` for ever while the
worker redelivered its message with a ``JSONDecodeError`` traceback each time, and
``wfkit verify`` / ``wfkit inspect events`` stopped at the row with a bare
``JSONDecodeError``. Now: the run fails once, naming the run and the event; the worker
logs one line, acks the message and keeps serving other runs; ``verify`` names the run
and event and goes on with the other runs; ``inspect events`` shows the row as
corrupted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from examples.e2e import faults
from tests.faults.conftest import PROCESS_WORLDS, WorldHandle, run_async, wfkit_cli
from wfkit.runtime.api.client import start_sync
from wfkit.runtime.engine.messages import wake_run
from wfkit.runtime.engine.worker import Worker

DAMAGE = {
    # kind: (column, stored value, what the failure says)
    "not_json": ("data", "{not json", "is not JSON"),
    "not_an_object": ("data", "[1, 2]", "does not validate: data"),
    "unknown_type": ("event_type", "step_exploded", "unknown event type 'step_exploded'"),
    "no_result": ("data", "{}", "has no 'result' in its data"),
}


def _damage(handle: WorldHandle, event_id: str, column: str, value: str) -> None:
    """Overwrite one column of one stored event, as a bad disk or a hand edit would."""
    if handle.kind == "local":
        with sqlite3.connect(handle.world.path) as db:
            changed = db.execute(
                f"UPDATE events SET {column} = ? WHERE event_id = ?", (value, event_id)
            ).rowcount
    else:
        with handle.world.engine.begin() as connection:
            changed = connection.execute(
                text(
                    f'UPDATE "{handle.world.schema}".events SET {column} = :value'
                    " WHERE event_id = :event"
                ),
                {"value": value, "event": event_id},
            ).rowcount
    assert changed == 1


def _stored_events(handle: WorldHandle, run_id: str) -> list[tuple[str, str]]:
    """``(event_type, data as stored)`` of each event of a run, read without decoding."""
    if handle.kind == "local":
        with sqlite3.connect(handle.world.path) as db:
            rows = db.execute(
                "SELECT event_type, data FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
    else:
        with handle.world.engine.connect() as connection:
            rows = connection.execute(
                text(
                    f'SELECT event_type, data FROM "{handle.world.schema}".events'
                    " WHERE run_id = :run ORDER BY seq"
                ),
                {"run": run_id},
            ).fetchall()
    return [(str(event_type), str(data)) for event_type, data in rows]


def _suspended_run(world: Any) -> tuple[str, str]:
    """A ``napper`` run whose first step completed and that sleeps; its replay is not
    cached anywhere (the worker that ran it is gone). Returns the run and the id of
    its ``step_completed`` event."""
    run_id = start_sync(faults.napper, 60.0, 0.0, world=world).run_id

    async def first_step() -> None:
        worker = Worker(world, poll_interval=0.01, sweep_interval=0)
        try:
            await worker.drain(timeout=20)
        finally:
            worker.close()

    run_async(first_step(), timeout=60)
    (completed,) = [e for e in world.events.list(run_id) if e.event_type == "step_completed"]
    return run_id, completed.event_id


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("kind", PROCESS_WORLDS)
def test_a_damaged_event_fails_its_run_once(
    kind: str,
    damage: str,
    make_world: Callable[[str], WorldHandle],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handle = make_world(kind)
    world = handle.world
    column, value, says = DAMAGE[damage]
    bad_run, bad_event = _suspended_run(world)
    _damage(handle, bad_event, column, value)
    wake_run(world, bad_run)  # as a hook payload or an operator's nudge would
    other_run = start_sync(faults.chain, 3, 0.0, world=world).run_id

    async def work() -> None:
        worker = Worker(world, poll_interval=0.01, sweep_interval=0)
        await worker.run_until_complete(bad_run, timeout=20)
        await worker.run_until_complete(other_run, timeout=20)
        # Nothing left to redeliver: another pass finds no work for the failed run.
        await asyncio.sleep(0.2)
        await worker.drain(timeout=5)

    with caplog.at_level(logging.INFO, logger="wfkit"):
        run_async(work(), timeout=90)

    failed = world.runs.get(bad_run)
    assert failed.status == "failed"
    assert failed.error is not None
    message = failed.error["message"]
    assert bad_run in message and bad_event in message and says in message, message
    stored = _stored_events(handle, bad_run)
    endings = [data for event_type, data in stored if event_type == "run_failed"]
    assert len(endings) == 1 and '"error_code":"CORRUPTED_EVENT_LOG"' in endings[0]
    assert world.runs.get(other_run).status == "completed"
    # The message was acked, not put back: nothing of the run is visible to a worker
    # (its sleep's wake-up, due in a minute, is dropped when it comes).
    visible = world.queue.receive(["__wkf_"], lease_seconds=0.1, max_messages=100)
    assert [m for m in visible if m.run_id == bad_run] == []

    records = [r for r in caplog.records if getattr(r, "run_id", None) == bad_run]
    failures = [r for r in records if r.levelno >= logging.ERROR]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    assert "CORRUPTED_EVENT_LOG" in failures[0].getMessage()
    assert failures[0].exc_info is None  # one line, no traceback
    assert failures[0].name.startswith("wfkit.")
    assert not [r for r in caplog.records if "redelivered later" in r.getMessage()]


@pytest.mark.parametrize("kind", PROCESS_WORLDS)
def test_verify_and_inspect_name_the_damaged_event_and_go_on(
    kind: str, make_world: Callable[[str], WorldHandle], build_dir: Path
) -> None:
    handle = make_world(kind)
    world = handle.world
    damaged = [_suspended_run(world) for _ in range(2)]
    _damage(handle, damaged[0][1], "data", "{not json")
    _damage(handle, damaged[1][1], "event_type", "step_exploded")

    verify = wfkit_cli(handle.spec, "verify")
    assert verify.returncode == 1, verify.stdout + verify.stderr
    lines = verify.stdout.strip().splitlines()
    assert len(lines) == 2, verify.stdout
    for run_id, event_id in damaged:
        (line,) = [line for line in lines if line.startswith(f"{run_id}: ")]
        assert line.startswith(f"{run_id}: corrupted event log: run {run_id}, event {event_id}")
    assert "Traceback" not in verify.stderr

    run_id, event_id = damaged[0]
    shown = wfkit_cli(handle.spec, "inspect", "events", run_id, build_dir=build_dir)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    types = [
        line.split()[2] if "ms" in line else line.split()[1] for line in shown.stdout.splitlines()
    ]
    # The row is in its place, and the events after it are still shown.
    assert types[types.index("CORRUPTED") :] == ["CORRUPTED", "wait_created"], shown.stdout
    assert f"CORRUPTED       {event_id} (sequence" in shown.stdout
    assert "is not JSON" in shown.stdout

    as_json = wfkit_cli(handle.spec, "inspect", "events", run_id, "--json", build_dir=build_dir)
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    records = json.loads(as_json.stdout)
    (bad,) = [r for r in records if r["event_type"] == "corrupted"]
    assert bad["event_id"] == event_id and "is not JSON" in bad["reason"]
    assert records[-1]["event_type"] == "wait_created"
