"""The statements (and, on Postgres, round trips) one sequential step costs.

A sequential step's write is one ``create_batch([step_completed, step_created,
step_started], expected_last_event_id=…)`` (DESIGN §5, the hot path), so its cost
in statements is the step rate's ceiling. These counts are pinned: a change that
adds a statement or a round trip to the hot path must change them here, on purpose.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import postgres_url
from tests.worlds.postgres_counts import count_postgres
from wfkit.worlds.base import (
    BatchWrite,
    EntityConflictError,
    EventRequest,
    QueueMessageRequest,
    RunNotFoundError,
    World,
)
from wfkit.worlds.testing import WORLD_FACTORIES, diff_run_records

STEPS = 20


def _batch(i: int) -> list[EventRequest]:
    """What a worker writes when step ``i - 1`` returns and the workflow calls step ``i``."""
    return [
        EventRequest(event_type="step_completed", correlation_id=f"s{i - 1}", data={"result": i}),
        EventRequest(
            event_type="step_created", correlation_id=f"s{i}", data={"step_name": "a", "input": i}
        ),
        EventRequest(event_type="step_started", correlation_id=f"s{i}"),
    ]


def _start_run(world: World) -> tuple[str, str]:
    """A running run with step s0 started; (run id, id of its last event)."""
    created = world.events.create(
        None, EventRequest(event_type="run_created", data={"workflow_name": "wf", "input": None})
    )
    assert created.run is not None
    run_id = created.run.run_id
    last = world.events.create(run_id, EventRequest(event_type="run_started")).event.event_id
    first = world.events.create_batch(
        run_id,
        [
            EventRequest(event_type="step_created", correlation_id="s0", data={"step_name": "a"}),
            EventRequest(event_type="step_started", correlation_id="s0"),
        ],
        expected_last_event_id=last,
    )
    return run_id, first[-1].event.event_id


@contextlib.contextmanager
def _count_sqlite(world: World) -> Iterator[dict[str, int]]:
    """Count the statements SQLite runs on this thread's kept connection (the
    local world writes from the calling thread)."""
    counts = {"statements": 0}
    connection: sqlite3.Connection = world._connections.get()  # type: ignore[attr-defined]

    def trace(_sql: str) -> None:
        counts["statements"] += 1

    connection.set_trace_callback(trace)
    try:
        yield counts
    finally:
        connection.set_trace_callback(None)


PINNED = {
    # BEGIN IMMEDIATE, the run's status + log tail, INSERT events, INSERT the new
    # step, UPDATE the finished one, COMMIT (in-process: no round trips).
    "local": {"statements": 6},
    # One guarded statement writing events, steps and the run's tail, its own
    # transaction (autocommit): one round trip (tails.py), after the first step.
    "postgres": {"statements": 1, "round_trips": 1},
}


@pytest.mark.parametrize(
    "kind",
    [
        "local",
        pytest.param(
            "postgres",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not postgres_url(), reason="WFKIT_TEST_POSTGRES_URL not set"),
            ],
        ),
    ],
)
def test_statements_per_sequential_step_are_pinned(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = WORLD_FACTORIES[kind].make(tmp_path)
    try:
        run_id, last = _start_run(world)
        counter = _count_sqlite(world) if kind == "local" else count_postgres(monkeypatch)
        with counter as counts:
            for i in range(1, STEPS + 1):
                results = world.events.create_batch(run_id, _batch(i), expected_last_event_id=last)
                last = results[-1].event.event_id
        per_step = {name: count / STEPS for name, count in counts.items()}
        assert per_step == PINNED[kind]
        steps = world.steps.list(run_id)
        assert sum(step.status == "completed" for step in steps) == STEPS
        assert [s.status for s in steps if s.step_id == f"s{STEPS}"] == ["running"]
        assert diff_run_records(world, run_id) == []
    finally:
        world.close()


def _postgres_world(tmp_path: Path) -> World:
    if not postgres_url():
        pytest.skip("WFKIT_TEST_POSTGRES_URL not set")
    return WORLD_FACTORIES["postgres"].make(tmp_path)


def _new_run(i: int, *, keyed: bool = True) -> BatchWrite:
    data: dict[str, Any] = {"workflow_name": "wf", "input": i}
    if keyed:
        data["idempotency_key"] = f"key-{i}"
    return BatchWrite(f"wrun_group_{i}", [EventRequest(event_type="run_created", data=data)])


@pytest.mark.postgres
@pytest.mark.parametrize("size", [2, 5, 20])
def test_round_trips_per_group_do_not_grow_with_its_size(
    size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group of new runs with idempotency keys (nothing to lock, keys to check)
    and a group of step batches that need their runs locked cost two round trips;
    a group of new runs without keys, or of step batches continuing from this
    process's last writes, costs one."""
    world = _postgres_world(tmp_path)
    try:
        with count_postgres(monkeypatch) as created:
            outcomes = world.events.create_batches([_new_run(i) for i in range(size)])
        assert all(isinstance(outcome, list) for outcome in outcomes)
        with count_postgres(monkeypatch) as created_without_keys:
            outcomes = world.events.create_batches(
                [_new_run(size + i, keyed=False) for i in range(size)]
            )
        assert all(isinstance(outcome, list) for outcome in outcomes)
        runs = [_start_run(world) for _ in range(size)]
        with count_postgres(monkeypatch) as on_tails:
            outcomes = world.events.create_batches(
                [BatchWrite(r, _batch(1), expected_last_event_id=last) for r, last in runs]
            )
        lasts = [outcome[-1].event.event_id for outcome in outcomes if isinstance(outcome, list)]
        enqueue = [QueueMessageRequest(queue="q", payload={})]  # messages: never on a tail
        with count_postgres(monkeypatch) as locked:
            outcomes = world.events.create_batches(
                [
                    BatchWrite(r, _batch(2), enqueue, expected_last_event_id=last)
                    for (r, _), last in zip(runs, lasts, strict=True)
                ]
            )
        assert all(isinstance(outcome, list) for outcome in outcomes)
        round_trips = [
            counts["round_trips"] for counts in (created, locked, created_without_keys, on_tails)
        ]
        assert round_trips == [2, 2, 1, 1]
        assert len(world.queue.receive(["q"], lease_seconds=60, max_messages=50)) == size
        for run_id, _ in runs:
            assert [s.status for s in world.steps.list(run_id)] == [
                "completed",
                "completed",
                "running",
            ]
            assert diff_run_records(world, run_id) == []
    finally:
        world.close()


@pytest.mark.postgres
def test_starting_a_run_is_one_statement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``start``'s write (run_created and its queue message) reads nothing first: a
    taken run id or idempotency key is refused by the INSERT itself."""
    world = _postgres_world(tmp_path)
    try:
        start = _new_run(1)
        message = [QueueMessageRequest(queue="q_start", payload={"run_id": start.run_id})]
        with count_postgres(monkeypatch) as counts:
            world.events.create_batch(start.run_id, start.requests, messages=message)
        assert counts == {"statements": 1, "round_trips": 1}
        again = _new_run(2)
        for run_id, requests in ((start.run_id, again.requests), (again.run_id, start.requests)):
            with pytest.raises(EntityConflictError):
                world.events.create_batch(run_id, requests, messages=message)
        with pytest.raises(RunNotFoundError):
            world.runs.get(again.run_id)
        assert world.runs.get(start.run_id).input == 1
        assert len(world.queue.receive(["q_start"], lease_seconds=60, max_messages=5)) == 1
    finally:
        world.close()


@pytest.mark.postgres
def test_the_first_step_after_run_started_is_one_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``run_started`` batch changes the run (it takes the locking path), and
    leaves what it wrote behind for the next step batch, as a step batch does."""
    world = _postgres_world(tmp_path)
    try:
        created = world.events.create(
            None, EventRequest(event_type="run_created", data={"workflow_name": "wf"})
        )
        assert created.run is not None
        run_id = created.run.run_id
        started = world.events.create_batch(
            run_id,
            [
                EventRequest(event_type="run_started"),
                EventRequest(
                    event_type="step_created", correlation_id="s0", data={"step_name": "a"}
                ),
                EventRequest(event_type="step_started", correlation_id="s0"),
            ],
        )
        with count_postgres(monkeypatch) as counts:
            world.events.create_batch(
                run_id, _batch(1), expected_last_event_id=started[-1].event.event_id
            )
        assert counts == {"statements": 1, "round_trips": 1}
        assert [s.status for s in world.steps.list(run_id)] == ["completed", "running"]
        assert world.runs.get(run_id).status == "running"
    finally:
        world.close()
