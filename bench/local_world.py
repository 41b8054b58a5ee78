"""Micro-benchmark of the local (and memory) world's hot paths (not a test; prints a table).

    .venv/bin/python -m bench.local_world [--batches N] [--rounds R] [--dir DIR]

(from the repository root) runs N ``create_batch`` calls of
``[step_completed, step_created, step_started]`` on one run — what a worker
writes per sequential step, each batch one durable transaction — with
``expected_last_event_id`` set, and reports the best of R rounds: batches per
second by wall clock and per CPU second of this process (the latter is what a
busy machine does not distort). Then the same for queue and stream operations.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from wfkit.worlds.base import EventRequest, World
from wfkit.worlds.local import LocalWorld
from wfkit.worlds.memory import MemoryWorld

__all__ = ["main", "measure_batches", "measure_queue_and_streams"]


def _timed(action: Callable[[], None], count: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return count / (time.perf_counter() - wall), count / max(time.process_time() - cpu, 1e-9)


def running_run(world: World) -> tuple[str, str]:
    """A new running run whose step ``step_0`` has started: (run id, last event id)."""
    created = world.events.create(
        None, EventRequest(event_type="run_created", data={"workflow_name": "bench", "input": []})
    )
    assert created.run is not None
    run_id = created.run.run_id
    world.events.create(run_id, EventRequest(event_type="run_started"))
    results = world.events.create_batch(
        run_id,
        [
            EventRequest(
                event_type="step_created", correlation_id="step_0", data={"step_name": "s"}
            ),
            EventRequest(event_type="step_started", correlation_id="step_0"),
        ],
    )
    return run_id, results[-1].event.event_id


def next_step(step: int) -> list[EventRequest]:
    """What a worker writes when ``step_{step}`` returns and the next step starts."""
    return [
        EventRequest(
            event_type="step_completed", correlation_id=f"step_{step}", data={"result": {"n": step}}
        ),
        EventRequest(
            event_type="step_created",
            correlation_id=f"step_{step + 1}",
            data={"step_name": "s", "input": {"args": [step + 1]}},
        ),
        EventRequest(event_type="step_started", correlation_id=f"step_{step + 1}"),
    ]


def measure_batches(world: World, batches: int, rounds: int) -> tuple[float, float]:
    """Best (batches/s wall, batches per CPU second) over ``rounds`` rounds."""
    run_id, last = running_run(world)
    step = 0

    def run_round() -> None:
        nonlocal step, last
        for _ in range(batches):
            written = world.events.create_batch(
                run_id,
                next_step(step),
                expected_last_event_id=last,
            )
            step += 1
            last = written[-1].event.event_id

    best = (0.0, 0.0)
    for _ in range(rounds):
        wall, cpu = _timed(run_round, batches)
        best = (max(best[0], wall), max(best[1], cpu))
    return best


def measure_queue_and_streams(world: World, count: int) -> dict[str, float]:
    """Operations per second (wall) of enqueue, receive+ack and stream append."""

    def enqueue() -> None:
        for n in range(count):
            world.queue.enqueue("__wkf_step_b", {"run_id": f"wrun_{n}"}, idempotency_key=f"k{n}")

    def receive_ack() -> None:
        for _ in range(count):
            (message,) = world.queue.receive(["__wkf_step_"], lease_seconds=30)
            world.queue.ack(message.message_id)

    def append() -> None:
        for _ in range(count):
            world.streams.append("wrun_bench", "out", b"x" * 100)

    return {
        "enqueue": _timed(enqueue, count)[0],
        "receive+ack": _timed(receive_ack, count)[0],
        "stream append": _timed(append, count)[0],
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite file goes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        worlds: list[tuple[str, World]] = [
            ("local", LocalWorld(Path(scratch) / "bench.db")),
            ("memory", MemoryWorld()),
        ]
        print(f"{'world':8} {'batches/s':>10} {'per CPU-s':>10}  (3 events per batch)")
        for name, world in worlds:
            wall, cpu = measure_batches(world, args.batches, args.rounds)
            print(f"{name:8} {wall:10.0f} {cpu:10.0f}")
        for name, world in worlds:
            rates = measure_queue_and_streams(world, args.batches)
            print(f"{name:8} " + "  ".join(f"{op}/s {rate:.0f}" for op, rate in rates.items()))
            world.close()


if __name__ == "__main__":
    main()
