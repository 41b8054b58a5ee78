"""A run's first worker write and its ending on the tail (``wfkit.worlds.sql.tails``).

A worker replays a run's whole log before its first write: the Postgres world
seeds the run's tail from the fold of that log, so the first write (``run_started``
and the first step) is planned without reading; an ending of a run that holds no
hook or wait is too. A group of such writes, of many runs, is one round trip and
writes what the locking path writes; a stale tail, or a run with a hook or a wait
to release, goes the locking path with its answers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.worlds.batch_writes import ev, next_step
from tests.worlds.postgres_counts import count_postgres
from wfkit.worlds.base import (
    BatchOutcome,
    BatchWrite,
    EntityConflictError,
    World,
    diff_run_records,
)
from wfkit.worlds.postgres import PostgresWorld
from wfkit.worlds.testing.factories import postgres_test_url

RUNS = 6

pytestmark = pytest.mark.postgres


@pytest.fixture
def starter(postgres_world: World) -> World:
    """The process that starts runs (``start``): a world object of its own."""
    return postgres_world


@pytest.fixture
def worker(starter: World) -> Iterator[World]:
    """A worker process's world object on the starter's schema: it knows no tail."""
    instance = PostgresWorld(postgres_test_url())
    try:
        yield instance
    finally:
        instance.close()


def _start(starter: World, i: int) -> str:
    """A run as ``start`` writes it, with the optional fields the fold must give back."""
    data: dict[str, Any] = {"workflow_name": "wf", "input": {"odd": i % 2}}
    if i % 2:
        data |= {"idempotency_key": f"key-{i}", "deadline_at": "2999-01-01T00:00:00+00:00"}
    created = starter.events.create(None, ev("run_created", **data))
    assert created.run is not None
    return created.run.run_id


def _first_write(run_id: str, last: str) -> BatchWrite:
    """The worker's first write: the run's start and its first step."""
    requests = [
        ev("run_started"),
        ev("step_created", "s0", step_name="a"),
        ev("step_started", "s0"),
    ]
    return BatchWrite(run_id, requests, expected_last_event_id=last)


def _ending(run_id: str, last: str, step: str = "s1") -> BatchWrite:
    requests = [ev("step_completed", step, result="done"), ev("run_completed", output=7)]
    return BatchWrite(run_id, requests, expected_last_event_id=last)


def _lasts(outcomes: list[BatchOutcome]) -> list[str]:
    lasts = []
    for outcome in outcomes:
        assert isinstance(outcome, list), outcome
        lasts.append(outcome[-1].event.event_id)
    return lasts


def _replayed(world: World, run_ids: list[str]) -> list[str]:
    """Each run's whole log read (a worker's replay); the id of its last event."""
    return [world.events.list(run_id)[-1].event_id for run_id in run_ids]


def _work_through(
    world: World, run_ids: list[str], monkeypatch: pytest.MonkeyPatch
) -> list[dict[str, int]]:
    """Replay the runs, then write their first writes, a step and their endings as
    three groups; what each group sent."""
    lasts = _replayed(world, run_ids)
    counts = []
    for make in (_first_write, next_step, _ending):
        writes = [make(r, last) for r, last in zip(run_ids, lasts, strict=True)]
        with count_postgres(monkeypatch) as sent:
            lasts = _lasts(world.events.create_batches(writes))
        counts.append(dict(sent))
    return counts


def _written(world: World, run_id: str) -> list[Any]:
    """The run's events and records without what differs between two equal writes
    (ids, times, the idempotency key each run has its own of); and the fold's
    differences from the records (``wfkit verify``)."""
    run = world.runs.get(run_id)
    unequal = {"run_id", "idempotency_key", "created_at", "updated_at", "started_at"}
    return [
        [
            (e.event_type, e.correlation_id, {k: v for k, v in e.data.items() if k not in unequal})
            for e in world.events.list(run_id)
        ],
        [(s.step_id, s.status, s.attempt, s.input, s.output) for s in world.steps.list(run_id)],
        run.model_dump(exclude={*unequal, "completed_at"}),
        diff_run_records(world, run_id),
    ]


def test_first_writes_steps_and_endings_of_many_runs_are_one_round_trip_each(
    starter: World, worker: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_tails = [_start(starter, i) for i in range(RUNS)]
    locked = [_start(starter, RUNS + i) for i in range(RUNS)]
    counts = _work_through(worker, on_tails, monkeypatch)
    assert [c["round_trips"] for c in counts] == [1, 1, 1]
    with monkeypatch.context() as patch:
        # The old way: no tail is ever seeded, each group locks and reads.
        patch.setattr(type(worker.events._tails), "seed", lambda *args: None)  # type: ignore[attr-defined]
        counts = _work_through(worker, locked, monkeypatch)
    assert [c["round_trips"] for c in counts] == [2, 1, 2]
    for tail_run, locked_run in zip(on_tails, locked, strict=True):
        written = _written(worker, tail_run)
        assert written == _written(worker, locked_run)
        assert written[2]["status"] == "completed" and written[3] == []
        assert worker.runs.get(tail_run).idempotency_key in (
            None,
            f"key-{on_tails.index(tail_run)}",
        )


def test_a_tail_another_process_moved_on_goes_the_locking_path(
    starter: World, worker: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [_start(starter, i) for i in range(2)]
    lasts = _replayed(worker, runs)
    # Another process starts the first run meanwhile: the seeded tail is stale.
    starter.events.create_batch(runs[0], _first_write(runs[0], lasts[0]).requests)
    with count_postgres(monkeypatch) as sent:
        refused, started = worker.events.create_batches(
            [_first_write(r, last) for r, last in zip(runs, lasts, strict=True)]
        )
    # The guard missed: written again on its own, locked and refused (nothing written).
    assert sent["round_trips"] == 1 + 1
    assert isinstance(refused, EntityConflictError) and "moved on" in str(refused)
    assert isinstance(started, list)
    for run_id in runs:
        assert worker.runs.get(run_id).status == "running"
        assert diff_run_records(worker, run_id) == []


@pytest.mark.parametrize(
    "holder",
    [
        ev("hook_created", "h1", token="t1", metadata=None, is_webhook=False),
        ev("wait_created", "w1", resume_at="2999-01-01T00:00:00+00:00"),
    ],
    ids=["hook", "wait"],
)
def test_a_run_holding_a_hook_or_a_wait_ends_through_the_locking_path_and_releases_it(
    holder: Any, starter: World, worker: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [_start(starter, i) for i in range(2)]
    lasts = _lasts(
        worker.events.create_batches(
            [_first_write(r, last) for r, last in zip(runs, _replayed(worker, runs), strict=True)]
        )
    )
    # Another process creates the hook or wait: the worker's tail no longer holds.
    starter.events.create(runs[0], holder)
    lasts[0] = _replayed(worker, runs[:1])[0]  # seeded again: it holds one now
    endings = [_ending(r, last, "s0") for r, last in zip(runs, lasts, strict=True)]
    with count_postgres(monkeypatch) as sent:
        _lasts(worker.events.create_batches(endings))
    assert sent["round_trips"] == 2
    assert [h.status for h in worker.hooks.list(run_id=runs[0])] in ([], ["disposed"])
    assert [w.status for w in worker.waits.list(runs[0])] in ([], ["completed"])
    for run_id in runs:
        assert worker.runs.get(run_id).status == "completed"
        assert diff_run_records(worker, run_id) == []


def test_a_run_the_worker_gave_a_hook_ends_through_the_locking_path(
    worker: World, starter: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hook created by this process's own write clears what the tail knew."""
    runs = [_start(starter, i) for i in range(2)]
    lasts = _lasts(
        worker.events.create_batches(
            [_first_write(r, last) for r, last in zip(runs, _replayed(worker, runs), strict=True)]
        )
    )
    hooked = ev("hook_created", "h1", token="t1", metadata=None, is_webhook=False)
    [created] = worker.events.create_batch(runs[0], [hooked], expected_last_event_id=lasts[0])
    lasts[0] = created.event.event_id
    endings = [_ending(r, last, "s0") for r, last in zip(runs, lasts, strict=True)]
    with count_postgres(monkeypatch) as sent:
        _lasts(worker.events.create_batches(endings))
    assert sent["round_trips"] == 2
    assert worker.hooks.get("h1").status == "disposed"
    assert diff_run_records(worker, runs[0]) == []


def test_a_cut_or_finished_log_seeds_nothing(starter: World, worker: World) -> None:
    run_id = _start(starter, 1)
    second = starter.events.create(run_id, ev("run_started")).event.event_id
    tails = worker.events._tails  # type: ignore[attr-defined]
    worker.events.list(run_id, limit=2)  # the limit may have cut it
    assert tails.get(run_id, second) is None
    worker.events.list(run_id, limit=3)
    assert tails.get(run_id, second) is not None
    ended = starter.events.create(run_id, ev("run_failed", error={"message": "x"}))
    worker.events.list(run_id)
    assert tails.get(run_id, ended.event.event_id) is None


def test_a_queued_run_is_admitted_on_its_tail_and_refused_a_plain_start_as_before(
    starter: World, worker: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = starter.events.create(
        None, ev("run_created", workflow_name="wf", queue_name="q", queue_priority=3)
    )
    assert created.run is not None
    run_id = created.run.run_id
    [last] = _replayed(worker, [run_id])
    with pytest.raises(EntityConflictError, match="until a worker admits it"):
        worker.events.create_batch(run_id, [ev("run_started")], expected_last_event_id=last)
    [last] = _replayed(worker, [run_id])
    admitted = [ev("run_started", admitted_by="worker-1"), ev("step_created", "s0", step_name="a")]
    with count_postgres(monkeypatch) as sent:
        worker.events.create_batch(run_id, admitted, expected_last_event_id=last)
    assert sent == {"statements": 1, "round_trips": 1}
    run = worker.runs.get(run_id)
    assert (run.status, run.admitted_by, run.queue_priority) == ("running", "worker-1", 3)
    assert diff_run_records(worker, run_id) == []


def test_starts_and_endings_on_the_tail_take_the_raw_path(
    starter: World, worker: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard's run columns go as text (times, integers), as the run writes of
    the locking path do: no psycopg cursor, alone or in a group."""
    alone, *grouped = runs = [_start(starter, i) for i in range(3)]
    lasts = dict(zip(runs, _replayed(worker, runs), strict=True))

    def write(make: Callable[[str, str], BatchWrite]) -> None:
        """``make``'s writes: the grouped runs' in a group, the other's alone."""
        writes = [make(r, lasts[r]) for r in grouped]
        lasts.update(zip(grouped, _lasts(worker.events.create_batches(writes)), strict=True))
        one = make(alone, lasts[alone])
        results = worker.events.create_batch(
            alone, one.requests, expected_last_event_id=lasts[alone]
        )
        lasts[alone] = results[-1].event.event_id

    def no_cursor(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("sent through psycopg's cursor")

    with monkeypatch.context() as patch:
        patch.setattr(psycopg.Cursor, "execute", no_cursor)
        patch.setattr(psycopg.Connection, "pipeline", no_cursor)
        write(_first_write)
        write(functools.partial(_ending, step="s0"))
    for run_id in runs:
        assert worker.runs.get(run_id).status == "completed"
        assert diff_run_records(worker, run_id) == []
