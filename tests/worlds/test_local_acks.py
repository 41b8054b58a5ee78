"""The local queue's acks ride on other write transactions (``wfkit.worlds.local.queue``):
no transaction of their own, never seen again by the world that acked, written by
the checkpointer's thread when nothing else writes, kept when the transaction that
carried them is rolled back."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from wfkit.worlds.base import EntityConflictError, EventRequest, QueueMessage
from wfkit.worlds.local import LocalWorld

ROOT = Path(__file__).resolve().parents[2]


def _leased(world: LocalWorld, count: int) -> list[QueueMessage]:
    for index in range(count):
        world.queue.enqueue("q", {"run_id": f"wrun_{index}"})
    messages = world.queue.receive(["q"], lease_seconds=60, max_messages=count)
    assert len(messages) == count
    return messages


def _new_run(world: LocalWorld) -> str:
    created = world.events.create(
        None, EventRequest(event_type="run_created", data={"workflow_name": "wf"})
    )
    assert created.run is not None
    return created.run.run_id


@contextmanager
def _write_transactions(world: LocalWorld) -> Iterator[list[str]]:
    """The write transactions begun on this thread's connection."""
    begun: list[str] = []
    connection: sqlite3.Connection = world._connections.get()

    def trace(sql: str) -> None:
        if sql.startswith("BEGIN IMMEDIATE"):
            begun.append(sql)

    connection.set_trace_callback(trace)
    try:
        yield begun
    finally:
        connection.set_trace_callback(None)


def test_acks_ride_on_the_next_write_transaction(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    try:
        messages = _leased(world, 20)
        with _write_transactions(world) as begun:
            for message in messages:
                world.queue.ack(message.message_id, attempt=message.attempt)
            _new_run(world)
        assert len(begun) == 1  # twenty acks and a write: one transaction
        other = LocalWorld(tmp_path / "w.db")  # another process's view
        try:
            assert other.queue.live_run_ids() == set()
        finally:
            other.close()
    finally:
        world.close()


def test_the_acking_world_never_sees_an_acked_message(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    try:
        (message,) = _leased(world, 1)
        world.queue.ack(message.message_id, attempt=message.attempt)
        assert world.queue.live_run_ids() == set()
        assert world.queue.next_visible_at() is None
    finally:
        world.close()


def test_acks_nothing_else_carries_are_written_within_a_checkpoint_round(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    other = LocalWorld(tmp_path / "w.db")
    try:
        (message,) = _leased(world, 1)
        world.queue.ack(message.message_id, attempt=message.attempt)
        deadline = time.monotonic() + 5
        while other.queue.live_run_ids():
            assert time.monotonic() < deadline, "the ack was never written"
            time.sleep(0.05)
    finally:
        other.close()
        world.close()


def test_acks_of_a_rolled_back_transaction_are_written_by_a_later_one(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    other = LocalWorld(tmp_path / "w.db")
    try:
        run_id = _new_run(world)
        (message,) = _leased(world, 1)
        world.queue.ack(message.message_id, attempt=message.attempt)
        with pytest.raises(EntityConflictError):  # refused: its transaction rolls back
            world.events.create(
                run_id, EventRequest(event_type="run_created", data={"workflow_name": "wf"})
            )
        world.events.create(run_id, EventRequest(event_type="run_started"))
        assert other.queue.live_run_ids() == set()  # the ack was written with it
    finally:
        other.close()
        world.close()


def test_a_stale_ack_still_does_nothing(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    try:
        world.queue.enqueue("q", {"run_id": "wrun_x"})
        (first,) = world.queue.receive(["q"], lease_seconds=0)
        (second,) = world.queue.receive(["q"], lease_seconds=60)
        world.queue.ack(first.message_id, attempt=first.attempt)  # leased again since
        assert world.queue.live_run_ids() == {"wrun_x"}
        world.queue.ack(second.message_id, attempt=second.attempt)
        assert world.queue.live_run_ids() == set()
    finally:
        world.close()


_ACK_AND_EXIT = """
import sys
from wfkit.worlds.local import LocalWorld

world = LocalWorld(sys.argv[1])
(message,) = world.queue.receive(["q"], lease_seconds=600)
world.queue.ack(message.message_id, attempt=message.attempt)
# no close(), no other write: as a worker stopped by SIGTERM ends
"""


def test_a_process_that_ends_without_closing_its_world_writes_its_acks(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    try:
        world.queue.enqueue("q", {"run_id": "wrun_x"})
        done = subprocess.run(
            [sys.executable, "-c", _ACK_AND_EXIT, str(tmp_path / "w.db")],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert world.queue.live_run_ids() == set()
    finally:
        world.close()
