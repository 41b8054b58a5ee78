"""Statements the Postgres world sends to libpq itself (``session._RawStatement``)
behave exactly as psycopg's cursor would: same rows and types, same errors,
prepared once per connection, and anything it cannot send the same way is left
to psycopg (nothing sent)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest

from wfkit.worlds.base import EntityConflictError, EventRequest, World
from wfkit.worlds.postgres import DatabaseUnavailableError, session
from wfkit.worlds.postgres.session import (
    _dict_row,
    _fetch,
    _RawStatement,
    execute_alone,
    fetch_rows,
    release_idle_connections,
    text_array,
)
from wfkit.worlds.testing import diff_run_records

pytestmark = pytest.mark.postgres

TYPED = (
    "SELECT %(text)s::text AS t, %(text)s::timestamptz AS at, length(%(other)s) AS n,"
    " %(other)s = 'b' AS flag, %(other)s::json AS doc, %(missing)s::text AS nothing"
)
PARAMS = {"text": "2026-01-02T03:04:05+00:00", "other": '"b"', "missing": None}
AT = "2026-01-02T03:04:05+00:00"


@pytest.fixture
def world(postgres_world: World) -> World:
    return postgres_world


@pytest.fixture
def connection(world: World) -> Iterator[psycopg.Connection[Any]]:
    pooled = world.engine.raw_connection()  # type: ignore[attr-defined]
    try:
        yield pooled.driver_connection
    finally:
        pooled.close()


def _by_cursor(connection: psycopg.Connection[Any], sql: str, params: Any) -> list[Any]:
    cursor = connection.cursor(row_factory=_dict_row)
    cursor.execute(sql, params)
    return _fetch(cursor)


def _prepared(connection: psycopg.Connection[Any], sql: str) -> int:
    statement = _RawStatement.of(sql)
    assert statement is not None
    row = connection.execute(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement = %s",
        [statement.query.decode()],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_rows_and_types_are_the_cursors(connection: psycopg.Connection[Any]) -> None:
    raw = _RawStatement.execute(connection, TYPED, PARAMS)
    assert raw is not None
    assert raw == _by_cursor(connection, TYPED, PARAMS)
    assert isinstance(raw[0]["at"], datetime)
    assert raw[0]["n"] == 3 and raw[0]["flag"] is False and raw[0]["doc"] == "b"
    assert raw[0]["nothing"] is None


def test_a_statement_is_prepared_once_per_connection(connection: psycopg.Connection[Any]) -> None:
    sql = "SELECT %(a)s::text || 'x' AS once"
    for _ in range(3):
        assert _RawStatement.execute(connection, sql, {"a": "y"}) == [{"once": "yx"}]
    assert _prepared(connection, sql) == 1


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT %(a)s::int AS n", {"a": 1}),  # not text: psycopg adapts it
        ("SELECT %(a)s::text AS t", {"a": "nul\x00"}),  # psycopg refuses it
        ("SELECT 'a%%' || %(a)s AS t", {"a": "b"}),  # a literal % psycopg unescapes
        ("SELECT 1 AS one", None),  # no parameters: nothing to prepare
    ],
)
def test_what_it_cannot_send_alike_is_left_to_psycopg(
    connection: psycopg.Connection[Any], sql: str, params: Any
) -> None:
    assert _RawStatement.execute(connection, sql, params) is None


def test_a_server_error_is_psycopgs_and_the_connection_goes_on(
    world: World, connection: psycopg.Connection[Any]
) -> None:
    table = f'"{world.schema}".runs'  # type: ignore[attr-defined]
    sql = f"SELECT run_id FROM {table} WHERE run_id = %(a)s::int::text"
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        _RawStatement.execute(connection, sql, {"a": "not a number"})
    assert _RawStatement.execute(connection, sql, {"a": "7"}) == []


def test_a_duplicate_written_alone_is_a_conflict_and_writes_nothing(world: World) -> None:
    engine = world.engine  # type: ignore[attr-defined]
    table = f'"{world.schema}".queue_messages'  # type: ignore[attr-defined]
    insert = (
        f"INSERT INTO {table} (message_id, queue, payload, attempt, created_at, visible_at)"
        " VALUES (%(id)s, %(queue)s, '{}', 0, now(), now()) RETURNING message_id"
    )
    assert execute_alone(engine, insert, {"id": "m1", "queue": "q"}) == [{"message_id": "m1"}]
    with pytest.raises(EntityConflictError):
        execute_alone(engine, insert, {"id": "m1", "queue": "other"})
    rows = execute_alone(
        engine, f"SELECT queue FROM {table} WHERE message_id = %(id)s", {"id": "m1"}
    )
    assert rows == [{"queue": "q"}]


def test_statements_deallocated_under_it_are_prepared_again(world: World) -> None:
    """psycopg ends a rollback with DEALLOCATE ALL once it prepared statements of
    its own: a statement prepared before is prepared again, nothing fails."""
    engine = world.engine  # type: ignore[attr-defined]
    sql = "SELECT %(a)s::text AS again"
    assert fetch_rows(engine, sql, {"a": "x"}) == [{"again": "x"}]
    pooled = engine.raw_connection()
    try:
        connection = pooled.driver_connection
        assert _RawStatement.execute(connection, sql, {"a": "x"}) == [{"again": "x"}]
        connection.execute("DEALLOCATE ALL")
    finally:
        pooled.close()
    assert fetch_rows(engine, sql, {"a": "y"}) == [{"again": "y"}]
    assert execute_alone(engine, sql, {"a": "z"}) == [{"again": "z"}]


def test_a_pipeline_gives_each_statements_rows_and_raises_the_first_error(
    connection: psycopg.Connection[Any],
) -> None:
    failing = ("SELECT %(a)s::int AS n", {"a": "x"})
    batch = [("BEGIN", None), (TYPED, PARAMS), failing, (TYPED, PARAMS), ("COMMIT", None)]
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        _RawStatement.pipeline(connection, batch)
    assert connection.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    connection.rollback()
    piped = _RawStatement.pipeline(connection, [("BEGIN", None), (TYPED, PARAMS), ("COMMIT", None)])
    assert piped is not None
    assert piped == [[], _by_cursor(connection, TYPED, PARAMS), []]
    assert connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert _RawStatement.pipeline(connection, [("BEGIN", None), ("SELECT 1", None)]) is None


def test_a_statement_alone_waits_for_a_connection_like_any_transaction(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No connection to be had (a server restarting): nothing was sent, so it is
    tried again, as ``run_transaction`` does, rather than given up at once."""
    engine = world.engine  # type: ignore[attr-defined]
    release_idle_connections(engine)  # none at hand: the pool must give one
    checkout = engine.raw_connection
    failures = [psycopg.OperationalError("connection refused")] * 2

    def flaky() -> Any:
        if failures:
            raise failures.pop()
        return checkout()

    monkeypatch.setattr(engine, "raw_connection", flaky)
    assert execute_alone(engine, "SELECT %(a)s::text AS up", {"a": "yes"}) == [{"up": "yes"}]
    assert not failures


def test_a_connection_keeps_a_bounded_number_prepared(
    connection: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``_KEPT`` statements prepared on a connection, a new text goes through
    psycopg there (which has its own bounded cache): the server's memory stays bounded."""
    _RawStatement.forget(connection)
    monkeypatch.setattr(session, "_KEPT", 2)
    texts = [f"SELECT %(a)s::text AS c{i}" for i in range(3)]
    assert _RawStatement.execute(connection, texts[0], {"a": "x"}) == [{"c0": "x"}]
    assert _RawStatement.execute(connection, texts[1], {"a": "x"}) == [{"c1": "x"}]
    assert _RawStatement.execute(connection, texts[2], {"a": "x"}) is None
    assert _RawStatement.pipeline(connection, [(texts[2], {"a": "x"})] * 2) is None
    assert _RawStatement.pipeline(connection, [(texts[0], {"a": "y"})] * 2) == [[{"c0": "y"}]] * 2


ARRAY_ITEMS = ["plain", 'with "quotes"', "back\\slash", "comma, {brace}", "", "NULL", "é ü"]


@pytest.mark.parametrize("items", [ARRAY_ITEMS, []])
def test_a_text_array_reads_back_as_its_items(
    connection: psycopg.Connection[Any], items: list[str]
) -> None:
    sql = "SELECT %(a)s::text[] AS items"
    params = {"a": text_array(items)}
    assert _RawStatement.execute(connection, sql, params) == [{"items": items}]
    assert _by_cursor(connection, sql, params) == [{"items": items}]


def test_run_writes_and_queue_statements_take_the_raw_path(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's creation, start and end (times and integers among its columns), the
    release of its hooks and waits, and the queue's lease, nack, lease extension
    and ack send only text or NULL, so none goes through psycopg's cursor; what
    they store is what the records say."""

    def no_cursor(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("sent through psycopg's cursor")

    monkeypatch.setattr(psycopg.Cursor, "execute", no_cursor)
    monkeypatch.setattr(psycopg.Connection, "pipeline", no_cursor)
    created = world.events.create(
        None, EventRequest(event_type="run_created", data={"workflow_name": "wf", "input": 1})
    )
    assert created.run is not None
    run_id = created.run.run_id
    started = world.events.create(run_id, EventRequest(event_type="run_started"))
    world.events.create_batch(
        run_id,
        [EventRequest(event_type="wait_created", correlation_id="w1", data={"resume_at": AT})],
        expected_last_event_id=started.event.event_id,
    )
    world.events.create(
        run_id, EventRequest(event_type="run_completed", data={"output": {"done": True}})
    )
    world.queue.enqueue("wf_q", {"run_id": run_id})
    [message] = world.queue.receive(["wf_"], lease_seconds=30.0)
    world.queue.nack(message.message_id, delay_seconds=0.0, attempt=message.attempt)
    [again] = world.queue.receive(["wf_"], lease_seconds=30.0)
    world.queue.extend_lease(again.message_id, lease_seconds=60.0, attempt=again.attempt)
    world.queue.ack(again.message_id, attempt=again.attempt)
    monkeypatch.undo()
    assert again.attempt == 2
    assert world.queue.receive(["wf_"], lease_seconds=30.0) == []
    assert diff_run_records(world, run_id) == []
    [wait] = world.waits.list(run_id)
    assert wait.status == "completed"


def test_a_read_alone_lost_in_flight_is_tried_again_where_a_write_alone_is_not(
    world: World, connection: psycopg.Connection[Any]
) -> None:
    """``fetch_rows`` (reads, acks) goes the way of ``execute_alone`` but keeps
    ``run_transaction``'s answer to a connection lost with its statement in flight:
    nothing is committing, so it is tried again on another connection; a write
    alone commits, so its outcome is unknown and it raises."""
    engine = world.engine  # type: ignore[attr-defined]
    release_idle_connections(engine)
    ask = "SELECT %(a)s::text AS up, pg_backend_pid() AS pid"
    for alone, survives in ((fetch_rows, True), (execute_alone, False)):
        [first] = alone(engine, ask, {"a": "x"})  # its connection is now kept at hand
        killed = connection.execute("SELECT pg_terminate_backend(%s)", [first["pid"]])
        assert killed.fetchone() == (True,)
        time.sleep(0.2)  # let the termination land
        if survives:
            [again] = alone(engine, ask, {"a": "y"})
            assert again["up"] == "y" and again["pid"] != first["pid"]
        else:
            with pytest.raises(DatabaseUnavailableError):
                alone(engine, ask, {"a": "y"})
