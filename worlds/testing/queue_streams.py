"""Conformance tests of the durable queue and of streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from wfkit.worlds.base import EntityConflictError, QueueMessage, World
from wfkit.worlds.testing.factories import WorldFactory

# --- queue -----------------------------------------------------------------


def test_enqueue_receive_ack(world: World) -> None:
    message_id = world.queue.enqueue("__wkf_workflow_wf", {"run_id": "wrun_1", "x": "\x00"})
    (message,) = world.queue.receive(["__wkf_workflow_"], lease_seconds=30)
    assert message.message_id == message_id and message.queue == "__wkf_workflow_wf"
    assert message.payload == {"run_id": "wrun_1", "x": "\x00"}
    assert message.attempt == 1 and message.run_id == "wrun_1"
    assert message.created_at.tzinfo is not None and message.visible_at > message.created_at
    assert world.queue.live_run_ids() == {"wrun_1"}
    assert world.queue.receive(["__wkf_workflow_"], lease_seconds=30) == []
    world.queue.ack(message_id)
    world.queue.ack(message_id)  # acking twice is harmless
    assert world.queue.live_run_ids() == set()
    assert world.queue.receive([""], lease_seconds=0) == []


def test_enqueue_with_delay(world: World) -> None:
    world.queue.enqueue("q_a", {"n": 1}, delay_seconds=0.4)
    assert world.queue.receive(["q_"], lease_seconds=30) == []
    time.sleep(0.5)
    (message,) = world.queue.receive(["q_"], lease_seconds=30)
    assert message.payload == {"n": 1}


def test_idempotency_key_dedupes_unacked_messages(world: World) -> None:
    first = world.queue.enqueue("q_a", {"n": 1}, idempotency_key="k")
    assert world.queue.enqueue("q_a", {"n": 2}, idempotency_key="k") == first
    (message,) = world.queue.receive(["q_"], lease_seconds=30)
    assert message.payload == {"n": 1}
    # Leased but not acked: still deduped.
    assert world.queue.enqueue("q_a", {"n": 3}, idempotency_key="k") == first
    world.queue.ack(first)
    second = world.queue.enqueue("q_a", {"n": 4}, idempotency_key="k")
    assert second != first
    assert world.queue.enqueue("q_b", {"n": 5}) != world.queue.enqueue("q_b", {"n": 5})


def test_lease_expiry_redelivers(world: World) -> None:
    message_id = world.queue.enqueue("q_a", {"n": 1})
    (first,) = world.queue.receive(["q_"], lease_seconds=0.3)
    assert world.queue.receive(["q_"], lease_seconds=0.3) == []
    time.sleep(0.4)
    (again,) = world.queue.receive(["q_"], lease_seconds=30)
    assert again.message_id == message_id == first.message_id
    assert again.attempt == 2


def test_nack_and_extend_lease(world: World) -> None:
    message_id = world.queue.enqueue("q_a", {"n": 1})
    world.queue.receive(["q_"], lease_seconds=30)
    world.queue.nack(message_id)
    (again,) = world.queue.receive(["q_"], lease_seconds=0.3)
    assert again.attempt == 2
    world.queue.extend_lease(message_id, lease_seconds=30)
    time.sleep(0.4)
    assert world.queue.receive(["q_"], lease_seconds=30) == []
    world.queue.nack(message_id, delay_seconds=0.3)
    assert world.queue.receive(["q_"], lease_seconds=30) == []
    time.sleep(0.4)
    (third,) = world.queue.receive(["q_"], lease_seconds=30)
    assert third.attempt == 3


def test_receive_by_prefix_and_batch(world: World) -> None:
    world.queue.enqueue("__wkf_step_a", {"n": 1})
    world.queue.enqueue("__wkf_workflow_b", {"n": 2})
    world.queue.enqueue("__wkf_step_c", {"n": 3})
    world.queue.enqueue("%wild_", {"n": 4})
    assert world.queue.receive(["__wkf_x"], lease_seconds=30) == []
    steps = world.queue.receive(["__wkf_step_"], lease_seconds=30, max_messages=10)
    assert [m.payload["n"] for m in steps] == [1, 3]
    assert world.queue.receive(["_"], lease_seconds=30, max_messages=10)[0].payload == {"n": 2}
    assert world.queue.receive(["%w"], lease_seconds=30)[0].payload == {"n": 4}
    with pytest.raises(ValueError):
        world.queue.receive([], lease_seconds=30)


def test_receive_is_fifo(world: World) -> None:
    ids = [world.queue.enqueue("q", {"n": n}) for n in range(5)]
    got = [world.queue.receive(["q"], lease_seconds=30)[0].message_id for _ in range(5)]
    assert got == ids


def test_receive_wait_wakes_on_enqueue_from_another_thread(world: World) -> None:
    timer = threading.Timer(0.2, lambda: world.queue.enqueue("q_late", {"n": 1}))
    timer.start()
    started = time.monotonic()
    messages = world.queue.receive(["q_"], lease_seconds=30, wait_seconds=10)
    elapsed = time.monotonic() - started
    timer.join()
    assert [m.payload for m in messages] == [{"n": 1}]
    assert 0.1 < elapsed < 3
    started = time.monotonic()
    assert world.queue.receive(["q_"], lease_seconds=30, wait_seconds=0.3) == []
    assert 0.25 < time.monotonic() - started < 3


def test_live_run_ids_and_delete_messages(world: World) -> None:
    world.queue.enqueue("q", {"run_id": "wrun_a"})
    world.queue.enqueue("q", {"run_id": "wrun_a", "step_id": "s"}, idempotency_key="ka")
    world.queue.enqueue("q", {"run_id": "wrun_b"}, delay_seconds=60)
    world.queue.enqueue("q", {"other": 1})
    assert world.queue.live_run_ids() == {"wrun_a", "wrun_b"}
    assert world.queue.delete_messages("wrun_a") == 2
    assert world.queue.live_run_ids() == {"wrun_b"}
    assert world.queue.enqueue("q", {"run_id": "wrun_a"}, idempotency_key="ka")
    assert len(world.queue.receive(["q"], lease_seconds=30, max_messages=10)) == 2


def test_threads_racing_one_message(world: World) -> None:
    world.queue.enqueue("q", {"n": 1})
    barrier = threading.Barrier(8)
    got: list[QueueMessage] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        messages = world.queue.receive(["q"], lease_seconds=30, wait_seconds=0.2)
        with lock:
            got.extend(messages)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(got) == 1


_PROCESS_WORKER = """
import json, sys, time
from wfkit.worlds import create_world
world = create_world(sys.argv[1])
start_at = float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
got = []
while True:
    messages = world.queue.receive(["race_"], lease_seconds=120, max_messages=2, wait_seconds=0.5)
    if not messages:
        break
    got.extend(m.message_id for m in messages)
world.close()
print(json.dumps(got))
"""


def test_processes_racing_queue_messages(world_factory: WorldFactory, tmp_path: Path) -> None:
    if world_factory.spec is None:
        pytest.skip(f"{world_factory.name} is an in-process world")
    world = world_factory.make(tmp_path)
    try:
        expected = {world.queue.enqueue(f"race_{n % 3}", {"n": n}) for n in range(60)}
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": root}
        start_at = time.time() + 1.5
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _PROCESS_WORKER,
                    world_factory.spec(tmp_path),
                    str(start_at),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(3)
        ]
        received: list[str] = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            received.extend(json.loads(out))
        assert sorted(received) == sorted(expected)  # each message exactly once
    finally:
        world.close()


# --- streams ---------------------------------------------------------------


def test_stream_append_read_close(world: World) -> None:
    chunks = [b"\x00", b"hello", b"", b"\xff\x00\xfe" * 100]
    assert [world.streams.append("wrun_1", "out", c) for c in chunks] == [0, 1, 2, 3]
    page = world.streams.read("wrun_1", "out")
    assert page.chunks == chunks and page.next_index == 4 and not page.closed
    page = world.streams.read("wrun_1", "out", start_index=1, limit=2)
    assert page.chunks == chunks[1:3] and page.next_index == 3 and not page.closed
    world.streams.close("wrun_1", "out")
    world.streams.close("wrun_1", "out")
    assert world.streams.read("wrun_1", "out", start_index=1, limit=2).closed is False
    tail = world.streams.read("wrun_1", "out", start_index=2)
    assert tail.chunks == chunks[2:] and tail.closed and tail.next_index == 4
    with pytest.raises(EntityConflictError):
        world.streams.append("wrun_1", "out", b"late")
    empty = world.streams.read("wrun_1", "missing", start_index=0)
    assert empty.chunks == [] and empty.next_index == 0 and not empty.closed


def test_stream_negative_start_index_counts_from_the_end(world: World) -> None:
    """The DevKit's ``startIndex: -n``: the last n chunks, each once, then the live tail."""
    for chunk in (b"a", b"b", b"c", b"d"):
        world.streams.append("wrun_1", "tail", chunk)
    last_two = world.streams.read("wrun_1", "tail", start_index=-2)
    assert (last_two.chunks, last_two.next_index) == ([b"c", b"d"], 4)
    first_of_them = world.streams.read("wrun_1", "tail", start_index=-3, limit=1)
    assert (first_of_them.chunks, first_of_them.next_index) == ([b"b"], 2)
    everything = world.streams.read("wrun_1", "tail", start_index=-10)
    assert (everything.chunks, everything.next_index) == ([b"a", b"b", b"c", b"d"], 4)
    world.streams.append("wrun_1", "tail", b"e")
    world.streams.close("wrun_1", "tail")
    closed_tail = world.streams.read("wrun_1", "tail", start_index=-1)
    assert (closed_tail.chunks, closed_tail.next_index, closed_tail.closed) == ([b"e"], 5, True)
    nothing_yet = world.streams.read("wrun_1", "missing", start_index=-3)
    assert (nothing_yet.chunks, nothing_yet.next_index, nothing_yet.closed) == ([], 0, False)


def test_stream_list(world: World) -> None:
    world.streams.append("wrun_1", "b", b"1")
    world.streams.append("wrun_1", "a", b"1")
    world.streams.close("wrun_1", "c")
    world.streams.append("wrun_2", "z", b"1")
    assert world.streams.list("wrun_1") == ["a", "b", "c"]
    assert world.streams.list("wrun_3") == []


def test_stream_wait_wakes_on_append_and_close(world: World) -> None:
    world.streams.append("wrun_1", "s", b"0")
    started = time.monotonic()
    world.streams.wait("wrun_1", "s", after_index=0, timeout=5)  # chunk 0 exists
    assert time.monotonic() - started < 1
    timer = threading.Timer(0.2, lambda: world.streams.append("wrun_1", "s", b"1"))
    timer.start()
    started = time.monotonic()
    world.streams.wait("wrun_1", "s", after_index=1, timeout=10)
    assert 0.1 < time.monotonic() - started < 3
    timer.join()
    assert world.streams.read("wrun_1", "s", start_index=1).chunks == [b"1"]
    timer = threading.Timer(0.2, lambda: world.streams.close("wrun_1", "s"))
    timer.start()
    started = time.monotonic()
    world.streams.wait("wrun_1", "s", after_index=2, timeout=10)
    assert 0.1 < time.monotonic() - started < 3
    timer.join()
    started = time.monotonic()
    world.streams.wait("wrun_1", "s", after_index=99, timeout=10)  # closed: at once
    assert time.monotonic() - started < 1
    started = time.monotonic()
    world.streams.wait("wrun_1", "never", after_index=0, timeout=0.3)
    assert 0.25 < time.monotonic() - started < 3


def test_streams_many_chunks_keep_order(world: World) -> None:
    payloads = [bytes([n % 256]) * (n % 7) for n in range(300)]
    for payload in payloads:
        world.streams.append("wrun_1", "big", payload)
    collected: list[bytes] = []
    index = 0
    while True:
        page = world.streams.read("wrun_1", "big", start_index=index, limit=64)
        collected.extend(page.chunks)
        index = page.next_index
        if not page.chunks:
            break
    assert collected == payloads
