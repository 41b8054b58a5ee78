"""Postgres-world specifics the conformance suite does not cover: schema versioning,
URL handling, error translation, statement timeout, LISTEN/NOTIFY wake-ups,
writers on separate connection pools, and surviving a server restart."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import postgres_url
from wfkit.worlds.base import (
    BatchWrite,
    EntityConflictError,
    EventRequest,
    EventResult,
    QueueMessageRequest,
    SchemaVersionError,
    diff_run_records,
)
from wfkit.worlds.postgres import (
    PostgresWorld,
    StatementTimeoutError,
    normalize_url,
)
from wfkit.worlds.postgres.session import fetch_scalar, release_idle_connections
from wfkit.worlds.sql import SCHEMA_VERSION

URL = postgres_url()
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="WFKIT_TEST_POSTGRES_URL is not set"),
]


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    """A schema of this test module's own; dropped at the end."""
    name = f"wfkit_pgtest_{secrets.token_hex(4)}"
    yield name
    assert URL
    world = PostgresWorld(URL, schema=name)
    world.drop_schema()
    world.close()


@pytest.fixture
def world(schema: str) -> Iterator[PostgresWorld]:
    """A fresh, empty Postgres world."""
    assert URL
    instance = PostgresWorld(URL, schema=schema)
    instance.reset()
    try:
        yield instance
    finally:
        instance.close()


def _new_run(world: PostgresWorld) -> str:
    result = world.events.create(
        None, EventRequest(event_type="run_created", data={"workflow_name": "wf", "input": None})
    )
    assert result.run is not None
    world.events.create(result.run.run_id, EventRequest(event_type="run_started"))
    return result.run.run_id


def _in_thread(action: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(action())
        except Exception as exc:
            box.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def test_normalize_url_pins_psycopg() -> None:
    for raw in ("postgres://u@h/db", "postgresql://u@h/db", "postgresql+psycopg://u@h/db"):
        assert normalize_url(raw).drivername == "postgresql+psycopg"
    with pytest.raises(ValueError, match="postgresql://"):
        normalize_url("mysql://u@h/db")


def test_schema_from_url_query(schema: str) -> None:
    assert URL
    separator = "&" if "?" in URL else "?"
    world = PostgresWorld(f"{URL}{separator}schema={schema}")
    try:
        assert world.schema == schema
        assert "schema" not in world.url.query
    finally:
        world.close()


def test_newer_schema_version_is_refused(world: PostgresWorld) -> None:
    assert URL
    fetch_scalar(world.engine, f'UPDATE "{world.schema}".schema_version SET version = 999')
    try:
        with pytest.raises(SchemaVersionError, match=r"version 999.*upgrade wfkit"):
            PostgresWorld(URL, schema=world.schema)
    finally:
        fetch_scalar(
            world.engine,
            f'UPDATE "{world.schema}".schema_version SET version = {SCHEMA_VERSION}',
        )


def test_unique_violation_becomes_entity_conflict(world: PostgresWorld) -> None:
    run_id = _new_run(world)
    event_id = world.events.list(run_id)[0].event_id
    with pytest.raises(EntityConflictError, match="duplicate"):
        fetch_scalar(
            world.engine,
            f"INSERT INTO {world.names.events} (event_id, run_id, event_type, data,"
            " created_at, spec_version) VALUES (%(e)s, %(r)s, 'run_started', '{}', now(), 2)",
            {"e": event_id, "r": run_id},
        )


def test_statement_timeout_cancels_a_stuck_query(schema: str) -> None:
    assert URL
    world = PostgresWorld(URL, schema=schema, statement_timeout_ms=100)
    try:
        started = time.monotonic()
        with pytest.raises(StatementTimeoutError):
            fetch_scalar(world.engine, "SELECT pg_sleep(5)")
        assert time.monotonic() - started < 3
    finally:
        world.close()


def test_receive_is_woken_by_notify(world: PostgresWorld) -> None:
    assert world.listener.wait_connected(10)
    thread, box = _in_thread(lambda: world.queue.receive(["q"], lease_seconds=30, wait_seconds=10))
    time.sleep(0.3)  # the receiver is asleep on the listener by now
    sent = time.monotonic()
    world.queue.enqueue("q", {"n": 1})
    thread.join(10)
    latency = time.monotonic() - sent
    assert [m.payload for m in box[0]] == [{"n": 1}]
    assert latency < 0.5, f"woken after {latency:.3f}s: by the poll, not by NOTIFY"


def test_create_batch_messages_wake_a_receiver(world: PostgresWorld) -> None:
    run_id = _new_run(world)
    assert world.listener.wait_connected(10)
    thread, box = _in_thread(
        lambda: world.queue.receive(["__wkf_step_"], lease_seconds=30, wait_seconds=10)
    )
    time.sleep(0.3)
    sent = time.monotonic()
    world.events.create_batch(
        run_id,
        [EventRequest(event_type="step_created", correlation_id="step_1", data={"step_name": "s"})],
        messages=[QueueMessageRequest(queue="__wkf_step_s", payload={"run_id": run_id})],
    )
    thread.join(10)
    assert time.monotonic() - sent < 0.5
    assert box[0][0].run_id == run_id


def test_stream_wait_is_woken_by_append_and_close(world: PostgresWorld) -> None:
    assert world.listener.wait_connected(10)
    for action in (
        lambda: world.streams.append("wrun_x", "out", b"hello"),
        lambda: world.streams.close("wrun_x", "out"),
    ):
        after = world.streams.read("wrun_x", "out").next_index
        thread, _ = _in_thread(
            lambda after=after: world.streams.wait("wrun_x", "out", after_index=after, timeout=10)
        )
        time.sleep(0.3)
        sent = time.monotonic()
        action()
        thread.join(10)
        assert time.monotonic() - sent < 0.5
    page = world.streams.read("wrun_x", "out")
    assert page.chunks == [b"hello"]
    assert page.closed


def test_writers_on_separate_pools_serialize_on_the_run_lock(world: PostgresWorld) -> None:
    """Two worlds (two pools, as on two machines) race terminal events of one step."""
    assert URL
    other = PostgresWorld(URL, schema=world.schema)
    try:
        run_id = _new_run(world)
        world.events.create_batch(
            run_id,
            [
                EventRequest(
                    event_type="step_created", correlation_id="s1", data={"step_name": "a"}
                ),
                EventRequest(event_type="step_started", correlation_id="s1"),
            ],
        )
        barrier = threading.Barrier(8)
        outcomes: list[object] = []

        def complete(target: PostgresWorld, value: int) -> None:
            barrier.wait()
            try:
                outcomes.append(
                    target.events.create(
                        run_id,
                        EventRequest(
                            event_type="step_completed", correlation_id="s1", data={"result": value}
                        ),
                    )
                )
            except EntityConflictError as exc:
                outcomes.append(exc)

        threads = [
            threading.Thread(target=complete, args=(world if i % 2 else other, i)) for i in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sum(isinstance(o, EventResult) for o in outcomes) == 1
        assert sum(isinstance(o, EntityConflictError) for o in outcomes) == 7
        assert diff_run_records(world, run_id) == []
    finally:
        other.close()


def test_expected_last_event_id_across_pools(world: PostgresWorld) -> None:
    assert URL
    other = PostgresWorld(URL, schema=world.schema)
    try:
        run_id = _new_run(world)
        tail = world.events.list(run_id)[-1].event_id
        other.events.create(
            run_id,
            EventRequest(
                event_type="wait_created",
                correlation_id="w1",
                data={"resume_at": "2030-01-01T00:00:00Z"},
            ),
        )
        with pytest.raises(EntityConflictError, match="moved on"):
            world.events.create_batch(
                run_id,
                [EventRequest(event_type="run_completed", data={"output": 1})],
                expected_last_event_id=tail,
            )
        assert world.runs.get(run_id).status == "running"
    finally:
        other.close()


def _restart_postgres() -> None:
    """Restart the local cluster (Debian's pg_ctlcluster); skip where that is impossible."""
    ctl = shutil.which("pg_ctlcluster")
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if ctl is None or not versions:
        pytest.skip("no local Debian Postgres cluster to restart")
    subprocess.run(
        [ctl, "--skip-systemctl-redirect", versions[0], "main", "restart"], check=True, timeout=120
    )


@pytest.mark.slow
def test_survives_a_server_restart(world: PostgresWorld) -> None:
    run_id = _new_run(world)
    world.queue.enqueue("q", {"before": True})
    assert world.listener.wait_connected(10)

    _restart_postgres()

    # pg_ctlcluster returns once the server accepts connections: each dead pooled
    # connection fails its transaction's first round trip, is discarded and the
    # transaction retried, so the next operations just work.
    world.events.create(
        run_id,
        EventRequest(event_type="step_created", correlation_id="s1", data={"step_name": "a"}),
    )
    assert world.steps.get(run_id, "s1").status == "pending"
    assert [m.payload for m in world.queue.receive(["q"], lease_seconds=30)] == [{"before": True}]

    assert world.listener.wait_connected(30), "the LISTEN connection did not come back"
    thread, box = _in_thread(lambda: world.queue.receive(["q"], lease_seconds=30, wait_seconds=10))
    time.sleep(0.3)
    sent = time.monotonic()
    world.queue.enqueue("q", {"after": True})
    thread.join(10)
    assert [m.payload for m in box[0]] == [{"after": True}]
    assert time.monotonic() - sent < 0.5
    assert diff_run_records(world, run_id) == []


def _step_batch(i: int) -> list[EventRequest]:
    """A sequential step's write: step i-1 completed, step i created and started."""
    return [
        EventRequest(event_type="step_completed", correlation_id=f"s{i - 1}", data={"result": i}),
        EventRequest(event_type="step_created", correlation_id=f"s{i}", data={"step_name": "a"}),
        EventRequest(event_type="step_started", correlation_id=f"s{i}"),
    ]


def test_cached_step_write_is_refused_when_another_writer_moved_the_log(
    world: PostgresWorld, schema: str
) -> None:
    # Worker A writes a run's steps from what its own last write left (one round
    # trip, no lock, no read). Worker B, another process, takes the run over and
    # completes s1 and starts step b2. A's next write, still expecting the log to end at its own
    # batch, must be refused whole — the guard sees the moved tail — not
    # written on top of B's.
    assert URL
    run_id = _new_run(world)
    last = world.events.list(run_id)[-1].event_id
    first = world.events.create_batch(
        run_id,
        [
            EventRequest(event_type="step_created", correlation_id="s0", data={"step_name": "a"}),
            EventRequest(event_type="step_started", correlation_id="s0"),
        ],
        expected_last_event_id=last,
    )
    a_last = world.events.create_batch(
        run_id, _step_batch(1), expected_last_event_id=first[-1].event.event_id
    )[-1].event.event_id
    other = PostgresWorld(URL, schema=schema)
    try:
        # B's step has another id, so no unique index can catch A's stale write.
        takeover = _step_batch(2)
        takeover[1:] = [
            request.model_copy(update={"correlation_id": "b2"}) for request in takeover[1:]
        ]
        other.events.create_batch(run_id, takeover, expected_last_event_id=a_last)
    finally:
        other.close()

    with pytest.raises(EntityConflictError, match="moved on"):
        world.events.create_batch(run_id, _step_batch(2), expected_last_event_id=a_last)

    events = world.events.list(run_id)
    assert [e.correlation_id for e in events if e.event_type == "step_created"] == [
        "s0",
        "s1",
        "b2",
    ]
    completed = [e.correlation_id for e in events if e.event_type == "step_completed"]
    assert completed == ["s0", "s1"]
    assert diff_run_records(world, run_id) == []
    # And A carries on from the log as it now is.
    carry_on = [
        EventRequest(event_type="step_completed", correlation_id="b2", data={"result": 2}),
        *_step_batch(3)[1:],
    ]
    world.events.create_batch(run_id, carry_on, expected_last_event_id=events[-1].event_id)
    assert world.steps.get(run_id, "s3").status == "running"
    assert diff_run_records(world, run_id) == []


def _pooled_backend_pids(world: PostgresWorld, count: int) -> list[int]:
    """The server pids behind ``count`` of the world's pooled connections (all
    checked out at once, so they are distinct, then returned to the pool, where
    the world takes its next connections from once it has none kept at hand)."""
    release_idle_connections(world.engine)
    held = [world.engine.raw_connection() for _ in range(count)]
    try:
        return [conn.driver_connection.info.backend_pid for conn in held]
    finally:
        for conn in held:
            conn.close()


def test_dead_pooled_connections_are_replaced_without_a_ping(world: PostgresWorld) -> None:
    # Without pre-ping (the default: it costs a round trip per transaction), a
    # pooled connection whose server process is gone — as after a restart —
    # fails the first round trip of its transaction, before COMMIT: the
    # connection is discarded and the transaction retried on another.
    assert world.engine.pool._pre_ping is False
    run_id = _new_run(world)
    pids = _pooled_backend_pids(world, 3)
    killed = fetch_scalar(
        world.engine,
        "SELECT count(pg_terminate_backend(pid)) FROM unnest(%(pids)s::int[]) AS pid",
        {"pids": pids},
    )
    assert killed == 3
    time.sleep(0.2)  # let the terminations land

    world.events.create(
        run_id,
        EventRequest(event_type="step_created", correlation_id="s1", data={"step_name": "a"}),
    )
    world.queue.enqueue("q", {"after": True})
    assert world.steps.get(run_id, "s1").status == "pending"
    assert [m.payload for m in world.queue.receive(["q"], lease_seconds=30)] == [{"after": True}]
    events = world.events.list(run_id)
    assert [e.event_type for e in events].count("step_created") == 1
    assert diff_run_records(world, run_id) == []


def test_listener_reconnects_after_its_connection_is_killed(world: PostgresWorld) -> None:
    assert world.listener.wait_connected(10)
    killed = fetch_scalar(
        world.engine,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE query IN (%(queue)s, %(stream)s) AND pid <> pg_backend_pid()",
        {
            "queue": f'LISTEN "{world.names.queue_channel}"',
            "stream": f'LISTEN "{world.names.stream_channel}"',
        },
    )
    assert killed >= 1
    deadline = time.monotonic() + 10
    while world.listener.connected and time.monotonic() < deadline:
        time.sleep(0.01)  # the thread notices the dead connection…
    assert world.listener.wait_connected(10)  # …and comes back
    thread, box = _in_thread(lambda: world.queue.receive(["q"], lease_seconds=30, wait_seconds=10))
    time.sleep(0.3)
    sent = time.monotonic()
    world.queue.enqueue("q", {"n": 1})
    thread.join(10)
    assert [m.payload for m in box[0]] == [{"n": 1}]
    assert time.monotonic() - sent < 0.5


def test_queue_housekeeping_leaves_event_commits_durable(schema: str) -> None:
    """Leases, acks, nacks and lease extensions commit without waiting for the WAL
    flush, for their own statement only: the pooled connection they ran on keeps
    ``synchronous_commit`` on for the event writes that come next."""
    assert URL
    world = PostgresWorld(URL, schema=schema, pool_size=1, max_overflow=0)
    try:
        world.reset()
        for key in ("a", "b"):
            world.queue.enqueue("q_durable", {"key": key})
        first, second = world.queue.receive(["q_durable"], lease_seconds=60, max_messages=2)
        world.queue.extend_lease(first.message_id, lease_seconds=60, attempt=first.attempt)
        world.queue.nack(second.message_id, attempt=second.attempt)
        world.queue.ack(first.message_id, attempt=first.attempt)
        assert fetch_scalar(world.engine, "SHOW synchronous_commit") == "on"
        again = world.queue.receive(["q_durable"], lease_seconds=60, max_messages=2)
        assert [dict(m.payload) for m in again] == [{"key": "b"}]
        assert fetch_scalar(world.engine, "SHOW synchronous_commit") == "on"
    finally:
        world.close()


def test_concurrent_groups_over_the_same_runs_all_commit(world: PostgresWorld) -> None:
    """Two processes' groups writing the same runs, listed in opposite orders: each
    group locks its runs in run id order, so neither waits on the other in a cycle,
    and every write of both is answered with its results and stored."""
    run_ids = [_new_run(world) for _ in range(6)]
    other = PostgresWorld(world.url, schema=world.schema)
    rounds = 15

    def groups(events: Any, order: list[str], tag: str) -> list[Any]:
        outcomes = []
        for i in range(rounds):
            writes = [
                BatchWrite(
                    run_id,
                    [
                        EventRequest(
                            event_type="wait_created",
                            correlation_id=f"{tag}{i}",
                            data={"resume_at": "2999-01-01T00:00:00+00:00"},
                        )
                    ],
                )
                for run_id in order
            ]
            outcomes += events.create_batches(writes)
        return outcomes

    try:
        threads = [
            _in_thread(lambda: groups(world.events, run_ids, "a")),
            _in_thread(lambda: groups(other.events, run_ids[::-1], "b")),
        ]
        for thread, _ in threads:
            thread.join()
    finally:
        other.close()
    for _, box in threads:
        [outcomes] = box
        assert all(isinstance(outcome, list) for outcome in outcomes)
    for run_id in run_ids:
        assert len(world.waits.list(run_id)) == 2 * rounds
        assert diff_run_records(world, run_id) == []
