"""The local world plans a write continuing from this process's own last write to its
run on what that write left (``wfkit.worlds.sql.tails``), reading nothing before
the write lock; the check of the run's last event id under the lock keeps it
correct (``wfkit.worlds.local.events``): a run another process moved on is
planned on what it reads, and refused or accepted as before."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.worlds.batch_writes import ev, event_types, next_step, running_run
from wfkit.worlds.base import BatchWrite, EntityConflictError, diff_run_records
from wfkit.worlds.local import LocalWorld
from wfkit.worlds.local.events import LocalEvents


@contextmanager
def _statements(world: LocalWorld) -> Iterator[list[str]]:
    """The statements run on this thread's connection (the local world plans and
    writes a group on the calling thread)."""
    seen: list[str] = []
    connection: sqlite3.Connection = world._connections.get()
    connection.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        connection.set_trace_callback(None)


def _reads(statements: list[str]) -> list[str]:
    """The read transactions begun (the read before the lock) and the SELECTs run."""
    return [s for s in statements if s == "BEGIN" or s.lstrip().startswith("SELECT")]


def _written(world: LocalWorld, run_id: str) -> list[Any]:
    """The run's events and records with what differs between two equal writes (ids
    of events, times) left out."""
    run = world.runs.get(run_id)
    return [
        [(e.event_type, e.correlation_id, e.data) for e in world.events.list(run_id)],
        [(s.step_id, s.status, s.attempt, s.input, s.output) for s in world.steps.list(run_id)],
        (run.status, run.output, run.error),
        diff_run_records(world, run_id),
    ]


def _write_steps(world: LocalWorld, run_id: str, last: str, steps: int) -> tuple[str, list[str]]:
    """Write steps 1..``steps`` of the run through group writes, then end it; the
    run's last event id and the statements the writes ran."""
    with _statements(world) as seen:
        for i in range(1, steps + 1):
            [outcome] = world.events.create_batches([next_step(run_id, last, i)])
            assert isinstance(outcome, list)
            last = outcome[-1].event.event_id
        ending = [ev("step_completed", f"s{steps}", result="done"), ev("run_completed", output=7)]
        [outcome] = world.events.create_batches([BatchWrite(run_id, ending, (), last)])
        assert isinstance(outcome, list)
    return outcome[-1].event.event_id, seen


def _hooked_run_written(world: LocalWorld) -> tuple[str, list[str]]:
    """A running run with a hook (its ending then releases something) and three
    steps written through group writes, then ended; its id and the statements the
    group writes ran."""
    run_id, _ = running_run(world)
    [hooked] = world.events.create_batch(
        run_id, [ev("hook_created", "h1", token="t1", metadata=None, is_webhook=False)]
    )
    _, seen = _write_steps(world, run_id, hooked.event.event_id, 3)
    assert world.hooks.get("h1").status == "disposed"
    return run_id, seen


def test_a_write_on_the_tail_reads_nothing_and_writes_what_the_read_path_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = LocalWorld(tmp_path / "tail.db")
    read_world = LocalWorld(tmp_path / "read.db")
    try:
        on_tail, seen = _hooked_run_written(world)
        # The first write reads (the tail the hook's write left lacks s0); the
        # others only have their run's last event id checked under the lock.
        assert seen.count("BEGIN") == 1
        assert len(_reads(seen)) == 3 + 4  # the read (BEGIN, steps, the run), the 4 checks

        with monkeypatch.context() as patch:
            patch.setattr(LocalEvents, "_plan_on_tail", lambda self, write: None)
            read_path, seen = _hooked_run_written(read_world)
        assert seen.count("BEGIN") == 4  # each write read before the lock

        on_tail_rows, read_rows = _written(world, on_tail), _written(read_world, read_path)
        assert on_tail_rows == read_rows
        assert on_tail_rows[2] == ("completed", 7, None) and on_tail_rows[3] == []
    finally:
        read_world.close()
        world.close()


def test_a_write_that_missed_the_tail_reads_once_then_continues_on_it(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    try:
        run_id, last = running_run(world)
        fresh = LocalWorld(tmp_path / "w.db")  # knows nothing of the run
        try:
            with _statements(fresh) as seen:
                for i in (1, 2):
                    [outcome] = fresh.events.create_batches([next_step(run_id, last, i)])
                    assert isinstance(outcome, list)
                    last = outcome[-1].event.event_id
            assert seen.count("BEGIN") == 1  # the first write read, the second did not
            assert diff_run_records(fresh, run_id) == []
        finally:
            fresh.close()
    finally:
        world.close()


def test_a_run_another_process_moved_on_goes_the_read_path_and_is_refused_or_accepted(
    tmp_path: Path,
) -> None:
    world = LocalWorld(tmp_path / "w.db")
    other = LocalWorld(tmp_path / "w.db")  # another process's world, in effect
    try:
        run_id, last = running_run(world)
        [moved] = other.events.create_batches([next_step(run_id, last, 1)])
        assert isinstance(moved, list)
        # Still expecting ``last``: the tail matches, the check under the lock does not.
        [refused] = world.events.create_batches([next_step(run_id, last, 1)])
        assert isinstance(refused, EntityConflictError) and "moved on" in str(refused)
        assert world.events._tails.get(run_id, last) is None  # type: ignore[attr-defined]
        # The same through create_batch.
        run_b, last_b = running_run(world)
        other.events.create_batch(
            run_b, next_step(run_b, last_b, 1).requests, expected_last_event_id=last_b
        )
        with pytest.raises(EntityConflictError, match="moved on"):
            world.events.create_batch(
                run_b, next_step(run_b, last_b, 1).requests, expected_last_event_id=last_b
            )
        assert world.events._tails.get(run_b, last_b) is None  # type: ignore[attr-defined]
        # Continuing from the other process's write: read, and accepted.
        moved_last = moved[-1].event.event_id
        with _statements(world) as seen:
            [accepted] = world.events.create_batches([next_step(run_id, moved_last, 2)])
        assert isinstance(accepted, list) and "BEGIN" in seen
        assert event_types(world, run_id).count("step_completed") == 2
        for run in (run_id, run_b):
            assert diff_run_records(world, run) == []
    finally:
        other.close()
        world.close()


def _next_step_written(world: LocalWorld, run_id: str, last: str, i: int) -> str:
    """Write step ``i`` through a group write; the run's last event id."""
    [outcome] = world.events.create_batches([next_step(run_id, last, i)])
    assert isinstance(outcome, list)
    return outcome[-1].event.event_id


def test_a_step_the_tail_does_not_hold_is_refused_as_the_read_path_refuses_it(
    tmp_path: Path,
) -> None:
    world = LocalWorld(tmp_path / "w.db")
    tails = world.events._tails  # type: ignore[attr-defined]
    try:
        run_id, last = running_run(world)
        # s0 is completed: no tail holds it, so a plan on the tail takes it for new
        # and the step's primary key refuses the INSERT; the write is planned again
        # on what it reads, which refuses it as before.
        again = [ev("step_created", "s0", step_name="a")]
        last = _next_step_written(world, run_id, last, 1)
        assert tails.get(run_id, last) is not None
        with pytest.raises(EntityConflictError, match="already exists"):
            world.events.create_batch(run_id, again, expected_last_event_id=last)
        assert tails.get(run_id, last) is None

        last = _next_step_written(world, run_id, last, 2)  # reads, and leaves a tail
        assert tails.get(run_id, last) is not None
        [refused] = world.events.create_batches([BatchWrite(run_id, again, (), last)])
        assert isinstance(refused, EntityConflictError) and "already exists" in str(refused)
        assert tails.get(run_id, last) is None
        assert event_types(world, run_id).count("step_created") == 3
        assert diff_run_records(world, run_id) == []
    finally:
        world.close()


def test_a_first_write_after_reading_the_whole_log_reads_nothing_before_the_lock(
    tmp_path: Path,
) -> None:
    """The tail is seeded from the fold of a whole log read (a worker's replay of a
    run another process created), so the run's start is planned on it."""
    starter, worker = LocalWorld(tmp_path / "w.db"), LocalWorld(tmp_path / "w.db")
    try:
        created = starter.events.create(None, ev("run_created", workflow_name="wf", input=1))
        assert created.run is not None
        run_id = created.run.run_id
        last = worker.events.list(run_id)[-1].event_id
        start = [
            ev("run_started"),
            ev("step_created", "s0", step_name="a"),
            ev("step_started", "s0"),
        ]
        with _statements(worker) as seen:
            [outcome] = worker.events.create_batches([BatchWrite(run_id, start, (), last)])
        assert isinstance(outcome, list)
        assert "BEGIN" not in seen  # no read transaction before the lock
        assert worker.runs.get(run_id).status == "running"
        assert diff_run_records(worker, run_id) == []
    finally:
        worker.close()
        starter.close()
