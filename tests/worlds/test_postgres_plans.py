"""A step's write on Postgres finds the rows it changes by index, however big the tables.

The write is one statement of CTEs over ``json_to_recordset``; the planner takes
such a source for 100 rows whatever it holds, and for 100 rows it used to hash
them against a sequential scan of the whole ``steps`` table: 0.9 ms per step at
10,000 step rows and growing with the table, so a busy world slowed down as it
filled (bench.worker_cpu on Postgres: 636 → 1,089 steps/s once fixed). Here the
statements a real step and a real wait write send are captured and EXPLAINed
against tables of 20,000 rows: each must find its rows by an index condition on
the whole key (told only the run, the planner walked every step of the run: at
step 500 of one run, 500 rows read and dropped per step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import postgres_url
from wfkit.worlds.base import EventRequest, World
from wfkit.worlds.postgres.session import _RawStatement

pytestmark = pytest.mark.postgres

FILLER = 20_000


@pytest.fixture
def world(postgres_world: World) -> World:
    return postgres_world


def _sql(world: World, statement: str) -> None:
    with psycopg.connect(postgres_url() or "", autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{world.schema}"')  # type: ignore[attr-defined]
        conn.execute(statement)


def _fill(world: World) -> None:
    """Other runs' steps and waits, as a world that has worked a while holds them."""
    _sql(
        world,
        "INSERT INTO steps (run_id, step_id, step_name, status, attempt, created_at, updated_at)"
        f" SELECT 'other' || (i / 5), 's' || (i % 5), 'a', 'completed', 1, now(), now()"
        f" FROM generate_series(1, {FILLER}) AS i;"
        " INSERT INTO waits (run_id, wait_id, status, resume_at, created_at, updated_at)"
        f" SELECT 'other' || i, 'w', 'completed', now(), now(), now()"
        f" FROM generate_series(1, {FILLER}) AS i;"
        " ANALYZE steps; ANALYZE waits",
    )


def _capture(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    sent: list[tuple[str, Any]] = []
    execute: Callable[..., Any] = psycopg.Cursor.execute

    def capturing(self: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(query, str) and query.lstrip().upper().startswith(("WITH", "UPDATE")):
            sent.append((query, params))
        return execute(self, query, params, *args, **kwargs)

    raw_execute: Callable[..., Any] = _RawStatement.execute

    def capturing_raw(connection: Any, query: str, params: Any, **kwargs: Any) -> Any:
        rows = raw_execute(connection, query, params, **kwargs)
        if rows is not None and query.lstrip().upper().startswith(("WITH", "UPDATE")):
            sent.append((query, params))  # sent to libpq directly, not by a cursor
        return rows

    raw_pipeline: Callable[..., Any] = _RawStatement.pipeline

    def capturing_pipeline(connection: Any, batch: Any) -> Any:
        results = raw_pipeline(connection, batch)
        if results is not None:
            sent.extend(
                (query, params)
                for query, params in batch
                if query.lstrip().upper().startswith(("WITH", "UPDATE"))
            )
        return results

    monkeypatch.setattr(psycopg.Cursor, "execute", capturing)
    monkeypatch.setattr(_RawStatement, "execute", capturing_raw)
    monkeypatch.setattr(_RawStatement, "pipeline", capturing_pipeline)
    return sent


def _scanned_whole(world: World, sent: list[tuple[str, Any]], table: str, key: str) -> list[str]:
    """The captured statements whose plan reads more of ``table`` than the rows it
    names: a Seq Scan on it, or an index scan whose condition leaves out ``key``
    (the last column of its primary key: such a scan walks, say, every step of
    the run)."""
    found = []
    with psycopg.connect(postgres_url() or "", autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{world.schema}"')  # type: ignore[attr-defined]
        for query, params in sent:
            row = conn.execute(f"EXPLAIN (FORMAT JSON) {query}", params).fetchone()
            assert row is not None
            for node_type, relation, condition in _scans(row[0][0]["Plan"]):
                if relation != table or not node_type.endswith("Scan"):
                    continue  # another table, or the UPDATE/INSERT itself
                if node_type == "Seq Scan" or key not in condition:
                    found.append(f"{node_type} {condition!r}: {query[:100]}")
    return found


def _scans(node: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    condition = node.get("Index Cond") or node.get("Recheck Cond") or ""
    yield node["Node Type"], node.get("Relation Name", ""), condition
    for child in node.get("Plans", ()):
        yield from _scans(child)


def _running_run(world: World) -> tuple[str, str]:
    created = world.events.create(
        None, EventRequest(event_type="run_created", data={"workflow_name": "wf", "input": None})
    )
    assert created.run is not None
    last = world.events.create(created.run.run_id, EventRequest(event_type="run_started"))
    return created.run.run_id, last.event.event_id


def test_a_sequential_step_updates_its_step_by_index(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(world)
    run_id, last = _running_run(world)
    first = world.events.create_batch(
        run_id,
        [
            EventRequest(event_type="step_created", correlation_id="s0", data={"step_name": "a"}),
            EventRequest(event_type="step_started", correlation_id="s0"),
        ],
        expected_last_event_id=last,
    )
    sent = _capture(monkeypatch)
    # The hot path: the step's completion with the next step's creation (a tail
    # statement), then the run's end with the last completion (the locking path).
    second = world.events.create_batch(
        run_id,
        [
            EventRequest(event_type="step_completed", correlation_id="s0", data={"result": 1}),
            EventRequest(event_type="step_created", correlation_id="s1", data={"step_name": "a"}),
            EventRequest(event_type="step_started", correlation_id="s1"),
        ],
        expected_last_event_id=first[-1].event.event_id,
    )
    world.events.create_batch(
        run_id,
        [
            EventRequest(event_type="step_completed", correlation_id="s1", data={"result": 2}),
            EventRequest(event_type="run_completed", data={"output": 3}),
        ],
        expected_last_event_id=second[-1].event.event_id,
    )
    monkeypatch.undo()
    assert [s.status for s in world.steps.list(run_id)] == ["completed", "completed"]
    assert len(sent) >= 2
    assert _scanned_whole(world, sent, "steps", "step_id") == []


def test_a_wait_completes_by_index(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(world)
    run_id, last = _running_run(world)
    created = world.events.create_batch(
        run_id,
        [
            EventRequest(
                event_type="wait_created",
                correlation_id="w0",
                data={"resume_at": "2026-01-01T00:00:00+00:00"},
            )
        ],
        expected_last_event_id=last,
    )
    sent = _capture(monkeypatch)
    world.events.create_batch(
        run_id,
        [EventRequest(event_type="wait_completed", correlation_id="w0")],
        expected_last_event_id=created[-1].event.event_id,
    )
    monkeypatch.undo()
    assert [w.status for w in world.waits.list(run_id)] == ["completed"]
    assert sent
    assert _scanned_whole(world, sent, "waits", "wait_id") == []


def test_a_hook_is_received_and_disposed_by_index(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(world)
    _sql(
        world,
        "INSERT INTO hooks (hook_id, run_id, token, status, is_webhook, created_at, updated_at)"
        f" SELECT 'h' || i, 'other' || i, 't' || i, 'disposed', false, now(), now()"
        f" FROM generate_series(1, {FILLER}) AS i; ANALYZE hooks",
    )
    run_id, last = _running_run(world)
    created = world.events.create_batch(
        run_id,
        [EventRequest(event_type="hook_created", correlation_id="mine", data={"token": "tok"})],
        expected_last_event_id=last,
    )
    sent = _capture(monkeypatch)
    received = world.events.create_batch(
        run_id,
        [EventRequest(event_type="hook_received", correlation_id="mine", data={"payload": 1})],
        expected_last_event_id=created[-1].event.event_id,
    )
    world.events.create_batch(
        run_id,
        [EventRequest(event_type="hook_disposed", correlation_id="mine")],
        expected_last_event_id=received[-1].event.event_id,
    )
    monkeypatch.undo()
    assert [h.status for h in world.hooks.list(run_id=run_id)] == ["disposed"]
    assert len(sent) >= 2
    assert _scanned_whole(world, sent, "hooks", "hook_id") == []
