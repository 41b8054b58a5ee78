"""Micro-benchmark of the Postgres world's hot path (not a test; prints a table).

    .venv/bin/python -m bench.postgres_world [URL] [--batches N] [--rounds R]

(from the repository root; URL defaults to ``WFKIT_TEST_POSTGRES_URL``) runs, in a
scratch schema it drops afterwards, N ``create_batch`` calls of
``[step_completed, step_created, step_started]`` on one run — what a worker
writes per sequential step — with ``expected_last_event_id`` set, for each
configuration (durable commit or ``synchronous_commit=off``; with and without
the pool's pre-ping), and reports the best of R rounds: wall time per batch,
batches per second and the client's CPU time per batch.
"""

from __future__ import annotations

import argparse
import os
import secrets
import time

from wfkit.worlds.base import EventRequest
from wfkit.worlds.postgres import PostgresWorld

__all__ = ["main", "measure"]


def measure(world: PostgresWorld, batches: int, rounds: int) -> tuple[float, float]:
    """Best (wall ms, client CPU ms) per batch over ``rounds`` rounds of ``batches``."""
    created = world.events.create(
        None, EventRequest(event_type="run_created", data={"workflow_name": "bench", "input": None})
    )
    assert created.run is not None
    run_id = created.run.run_id
    world.events.create(run_id, EventRequest(event_type="run_started"))
    first = world.events.create_batch(
        run_id,
        [
            EventRequest(
                event_type="step_created", correlation_id="step_0", data={"step_name": "s"}
            ),
            EventRequest(event_type="step_started", correlation_id="step_0"),
        ],
    )
    last = first[-1].event.event_id
    best_wall = best_cpu = float("inf")
    step = 0
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(batches):
            step += 1
            results = world.events.create_batch(
                run_id,
                [
                    EventRequest(
                        event_type="step_completed",
                        correlation_id=f"step_{step - 1}",
                        data={"result": step},
                    ),
                    EventRequest(
                        event_type="step_created",
                        correlation_id=f"step_{step}",
                        data={"step_name": "s", "input": step},
                    ),
                    EventRequest(event_type="step_started", correlation_id=f"step_{step}"),
                ],
                expected_last_event_id=last,
            )
            last = results[-1].event.event_id
        best_wall = min(best_wall, (time.perf_counter() - wall) / batches * 1e3)
        best_cpu = min(best_cpu, (time.process_time() - cpu) / batches * 1e3)
    return best_wall, best_cpu


def main(argv: list[str] | None = None) -> None:
    """Run every configuration and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("WFKIT_TEST_POSTGRES_URL"))
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give a postgresql:// URL (or set WFKIT_TEST_POSTGRES_URL)")
    print(f"{args.batches} x create_batch([step_completed, step_created, step_started])")
    print(f"{'configuration':44} {'ms/batch':>9} {'batches/s':>10} {'cpu ms':>7}")
    for durable in (True, False):
        for ping in (True, False):
            schema = f"wfkit_bench_{secrets.token_hex(4)}"
            world = PostgresWorld(
                args.url, schema=schema, synchronous_commit=durable, pool_pre_ping=ping
            )
            try:
                wall, cpu = measure(world, args.batches, args.rounds)
            finally:
                world.drop_schema()
                world.close()
            label = (
                f"synchronous_commit={'on' if durable else 'off'}, "
                f"pool_pre_ping={'on' if ping else 'off'}"
            )
            print(f"{label:44} {wall:9.3f} {1000 / wall:10.0f} {cpu:7.3f}")


if __name__ == "__main__":
    main()
