"""What the async client's worker-thread hop costs: each client call, sync vs async.

    .venv/bin/python -m bench.async_client [--worlds local,postgres] [--calls 300]

The async client calls run their world I/O in a worker thread (``asyncio.to_thread``)
so the caller's event loop never blocks on the database. This prints, per world and
call, the median microseconds of the ``_sync`` form and of the async form (awaited
one at a time on one loop), and the difference: the price of the thread hop.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.steps import _dispose, make_world
from wfkit.runtime import gen
from wfkit.runtime.api.client import (
    get_hook_by_token,
    get_hook_by_token_sync,
    get_run,
    start,
    start_sync,
)
from wfkit.worlds.base import EventRequest, World

WORKFLOW_ID = "workflow//./bench/async_client//idle"
HOOK_TOKEN = "bench-hook"


async def _idle() -> None:
    return None


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def _time_sync(call: Callable[[], Any], calls: int) -> float:
    samples = []
    for _ in range(calls):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return _median_us(samples)


def _time_async(call: Callable[[], Awaitable[Any]], calls: int) -> float:
    async def measure() -> list[float]:
        samples = []
        for _ in range(calls):
            began = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - began)
        return samples

    return _median_us(asyncio.run(measure()))


def _with_hook(world: World) -> str:
    """A run holding a live hook on ``HOOK_TOKEN`` (written directly: no worker needed)."""
    run = start_sync(WORKFLOW_ID, world=world)
    world.events.create_batch(run.run_id, [EventRequest(event_type="run_started")])
    world.events.create_batch(
        run.run_id,
        [
            EventRequest(
                event_type="hook_created",
                correlation_id="hook_01BENCH0000000000000000000",
                data={"token": HOOK_TOKEN, "metadata": None},
            )
        ],
    )
    return run.run_id


def measure_world(kind: str, directory: Path, calls: int) -> list[tuple[str, float, float]]:
    """(call, sync µs, async µs) for each client call on a fresh ``kind`` world."""
    world = make_world(kind, directory)
    try:
        run_id = _with_hook(world)
        handle = get_run(run_id, world=world)
        cases: list[tuple[str, Callable[[], Any], Callable[[], Awaitable[Any]]]] = [
            ("Run.status", handle.status_sync, handle.status),
            (
                "get_hook_by_token",
                lambda: get_hook_by_token_sync(HOOK_TOKEN, world=world),
                lambda: get_hook_by_token(HOOK_TOKEN, world=world),
            ),
            (
                "start",
                lambda: start_sync(WORKFLOW_ID, world=world),
                lambda: start(WORKFLOW_ID, world=world),
            ),
        ]
        rows = []
        for name, sync_call, async_call in cases:
            sync_call()  # warm caches and connections
            rows.append((name, _time_sync(sync_call, calls), _time_async(async_call, calls)))
        return rows
    finally:
        _dispose(world)


def main(argv: list[str] | None = None) -> None:
    """Measure every call on every world and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="local")
    parser.add_argument("--calls", type=int, default=300, help="calls per form; the median shows")
    args = parser.parse_args(argv)
    gen.register_workflow(WORKFLOW_ID, _idle)
    header = f"{'world':<9} {'call':<18} {'sync µs':>9} {'async µs':>9} {'overhead µs':>12}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.worlds.split(","):
            for name, sync_us, async_us in measure_world(kind, Path(tmp), args.calls):
                print(
                    f"{kind:<9} {name:<18} {sync_us:>9.0f} {async_us:>9.0f} "
                    f"{async_us - sync_us:>12.0f}"
                )


if __name__ == "__main__":
    main()
