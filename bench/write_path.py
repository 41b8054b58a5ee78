"""Micro-benchmark of the worlds' write path: ``Events.create_batches`` of 64
``BatchWrite``s shaped like a step (not a test; prints a table).

    .venv/bin/python -m bench.write_path [--worlds memory,local] [--groups N] [--rounds R]

Each write is one run's ``[step_completed, step_created, step_started]`` with
``expected_last_event_id`` set — what a worker's group commit writes per step of
64 runs in flight. Reports the best of R rounds of N groups: CPU µs per write (of
this process: the writes run on the calling thread) and writes per second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.local_world import next_step, running_run
from wfkit.worlds.base import BatchWrite, World
from wfkit.worlds.local import LocalWorld
from wfkit.worlds.memory import MemoryWorld

__all__ = ["main", "measure"]

WIDTH = 64


def measure(world: World, groups: int, rounds: int) -> tuple[float, float]:
    """Best (CPU µs per write, writes per wall second) over ``rounds`` rounds."""
    runs: list[str] = []
    last: dict[str, str] = {}
    for _ in range(WIDTH):
        run_id, last_event_id = running_run(world)
        runs.append(run_id)
        last[run_id] = last_event_id
    step = 0

    def group() -> None:
        nonlocal step
        writes = [
            BatchWrite(
                run_id,
                next_step(step),
                expected_last_event_id=last[run_id],
            )
            for run_id in runs
        ]
        outcomes = world.events.create_batches(writes)
        for run_id, outcome in zip(runs, outcomes, strict=True):
            assert isinstance(outcome, list), outcome
            last[run_id] = outcome[-1].event.event_id
        step += 1

    best_cpu, best_rate = float("inf"), 0.0
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(groups):
            group()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        writes = groups * WIDTH
        best_cpu = min(best_cpu, cpu / writes * 1e6)
        best_rate = max(best_rate, writes / wall)
    return best_cpu, best_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="memory,local")
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(
        f"create_batches of {WIDTH} step-shaped writes, {args.groups} groups, best of {args.rounds}"
    )
    print(f"{'world':8} {'CPU us/write':>12} {'writes/s':>10}")
    for name in args.worlds.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            world: World = MemoryWorld() if name == "memory" else LocalWorld(Path(tmp) / "bench.db")
            try:
                cpu, rate = measure(world, args.groups, args.rounds)
            finally:
                world.close()
        print(f"{name:8} {cpu:12.1f} {rate:10.0f}")


if __name__ == "__main__":
    main()
