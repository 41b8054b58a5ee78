"""The connections a Postgres world keeps at hand between statements
(``session.keep_idle_connections``): reused without going through the pool,
never more than the pool's size, closed with the world, and left alone by a
forked child."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from tests.conftest import postgres_url
from tests.worlds.batch_writes import running_run
from wfkit.worlds.base import EventRequest
from wfkit.worlds.postgres import PostgresWorld
from wfkit.worlds.postgres.session import Session, fetch_scalar, run_transaction

URL = postgres_url()
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="WFKIT_TEST_POSTGRES_URL is not set"),
]


@pytest.fixture
def world(postgres_world: Any) -> PostgresWorld:
    assert isinstance(postgres_world, PostgresWorld)
    return postgres_world


def _backend_pid(world: PostgresWorld) -> int:
    pid = fetch_scalar(world.engine, "SELECT pg_backend_pid() AS pid")
    assert isinstance(pid, int)
    return pid


def _next_step(world: PostgresWorld, run_id: str, last: str, i: int) -> str:
    results = world.events.create_batch(
        run_id,
        [
            EventRequest(event_type="step_completed", correlation_id=f"s{i - 1}", data={"i": i}),
            EventRequest(
                event_type="step_created", correlation_id=f"s{i}", data={"step_name": "a"}
            ),
            EventRequest(event_type="step_started", correlation_id=f"s{i}"),
        ],
        expected_last_event_id=last,
    )
    return results[-1].event.event_id


def test_sequential_writes_reuse_one_connection_without_the_pool(
    world: PostgresWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, last = running_run(world)
    pid = _backend_pid(world)
    checkouts = 0
    checkout = world.engine.raw_connection

    def counting() -> Any:
        nonlocal checkouts
        checkouts += 1
        return checkout()

    monkeypatch.setattr(world.engine, "raw_connection", counting)
    for i in range(1, 11):
        last = _next_step(world, run_id, last, i)
    assert world.steps.get(run_id, "s10").status == "running"
    assert _backend_pid(world) == pid
    assert checkouts == 0


def test_no_more_connections_are_kept_than_the_pool_holds(world: PostgresWorld) -> None:
    """Eight transactions at once take eight connections; five (the pool's size)
    are kept afterwards, the other three are closed (as the pool closes its
    overflow)."""
    together = threading.Barrier(8, timeout=30)

    def work(session: Session) -> int:
        pid = session.scalar("SELECT pg_backend_pid() AS pid")
        together.wait()
        return int(pid)

    pids: list[int] = []
    threads = [
        threading.Thread(target=lambda: pids.append(run_transaction(world.engine, work)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(set(pids)) == 8
    assert world.engine.pool.checkedout() == 5  # type: ignore[attr-defined]
    # The other three are closed, not left idle in the pool as well.
    deadline = time.monotonic() + 10
    alive = -1
    while alive != 5 and time.monotonic() < deadline:
        alive = fetch_scalar(
            world.engine,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE pid = ANY(%(pids)s::int[])",
            {"pids": "{" + ",".join(map(str, pids)) + "}"},
        )
        time.sleep(0.05)
    assert alive == 5


def test_close_closes_the_kept_connections(tmp_path: Any) -> None:
    assert URL
    schema = f"wfkit_conn_{os.getpid()}_{time.time_ns()}"
    world = PostgresWorld(URL, schema=schema)
    try:
        running_run(world)
        pid = _backend_pid(world)  # kept at hand once this returns
    finally:
        world.drop_schema()
        world.close()
    observer = PostgresWorld(URL, schema=f"{schema}_observer")
    try:
        deadline = time.monotonic() + 10
        alive = 1
        while alive and time.monotonic() < deadline:
            alive = fetch_scalar(
                observer.engine,
                "SELECT count(*) AS n FROM pg_stat_activity WHERE pid = %(pid)s::int",
                {"pid": str(pid)},
            )
            time.sleep(0.05)
        assert alive == 0, f"backend {pid} still connected after close()"
    finally:
        observer.drop_schema()
        observer.close()


def test_a_forked_child_never_uses_the_parents_kept_connections(world: PostgresWorld) -> None:
    run_id, last = running_run(world)
    parent_pid = _backend_pid(world)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(read)
            os.write(write, str(_backend_pid(world)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as reader:
        child_backend = int(reader.read() or "0")
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_backend not in (0, parent_pid)
    # The parent's connection was neither used nor closed by the child.
    _next_step(world, run_id, last, 1)
    assert _backend_pid(world) == parent_pid


@pytest.mark.parametrize("options", [{"pool_pre_ping": True}, {"pool_size": 0}])
def test_nothing_is_kept_with_pre_ping_or_an_unbounded_pool(options: dict[str, Any]) -> None:
    """With pre-ping every use must go through the pool (which pings); with
    ``pool_size=0`` nothing bounds what would be kept."""
    assert URL
    world = PostgresWorld(URL, schema=f"wfkit_conn_{os.getpid()}_{time.time_ns()}", **options)
    try:
        running_run(world)
        assert world.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert _backend_pid(world) == _backend_pid(world)  # the pool kept it
    finally:
        world.drop_schema()
        world.close()
