# mypy: disallow-untyped-decorators=False, warn-return-any=False
"""Step throughput: N sequential trivial steps and one gather of N steps, per world.

    .venv/bin/python -m bench.steps [--worlds memory,local,postgres] [--sizes 10,100,1000]

Prints, per world and shape: total time, steps/s, write transactions
(``create``/``create_batch`` calls), CPU ms per step, and for sequential runs the
time per step around step 10, 100 and 1000
(from the ``step_completed`` timestamps), which must stay flat: replay cost per
step is constant because the worker keeps the run's replay alive. Where ``dbos``
is importable the same shapes run on DBOS + SQLite for comparison.

The workflows are registered through ``wfkit.runtime.gen`` exactly as generated code
registers them, so the numbers measure the runtime and the world, not the build.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wfkit.runtime import gen
from wfkit.runtime.api.client import start
from wfkit.runtime.engine.worker import Worker
from wfkit.worlds.base import World

NOOP_ID = "step//./bench/steps//noop"
SEQ_ID = "workflow//./bench/steps//sequential"
GATHER_ID = "workflow//./bench/steps//fan_out"


async def _noop(i: int) -> int:
    return i


noop = gen.step_proxy(NOOP_ID, "noop")


async def _sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total += await noop(i)
    return total


async def _fan_out(n: int) -> int:
    return sum(await asyncio.gather(*(noop(i) for i in range(n))))


def register() -> None:
    """Register the bench step and workflows, as generated code would."""
    gen.register_step(NOOP_ID, _noop)
    gen.register_workflow(SEQ_ID, _sequential)
    gen.register_workflow(GATHER_ID, _fan_out)


class _CountingEvents:
    """Counts write transactions (create / create_batch) on the way to the world."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.transactions = 0

    def create(self, *args: Any, **kwargs: Any) -> Any:
        self.transactions += 1
        return self._inner.create(*args, **kwargs)

    def create_batch(self, *args: Any, **kwargs: Any) -> Any:
        self.transactions += 1
        return self._inner.create_batch(*args, **kwargs)

    def create_batches(self, *args: Any, **kwargs: Any) -> Any:
        self.transactions += 1  # a group commit: many runs' writes, one transaction
        return self._inner.create_batches(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "prepare_batches":  # a group commit too, when the world offers it
            prepare = getattr(self._inner, name)

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.transactions += 1
                return prepare(*args, **kwargs)

            return counted
        return getattr(self._inner, name)


def postgres_bench_url() -> str:
    import os

    return os.environ.get("WFKIT_BENCH_POSTGRES_URL") or os.environ.get(
        "WFKIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )


def make_world(kind: str, directory: Path) -> World:
    """A fresh memory world, a local (SQLite) world in ``directory``, or a Postgres world
    in a fresh schema of ``WFKIT_BENCH_POSTGRES_URL`` (default: the test server)."""
    if kind == "memory":
        from wfkit.worlds.memory import MemoryWorld

        return MemoryWorld()
    if kind == "postgres":
        from wfkit.worlds.postgres import PostgresWorld

        return PostgresWorld(postgres_bench_url(), schema=f"bench_{time.time_ns()}")
    from wfkit.worlds.local import LocalWorld

    return LocalWorld.from_spec(f"sqlite:///{directory / f'bench-{time.time_ns()}.db'}")


def _dispose(world: World) -> None:
    drop = getattr(world, "drop_schema", None)
    if callable(drop):  # a bench schema on the Postgres server
        drop()
    world.close()


def _per_step_ms(world: World, run_id: str, at: list[int]) -> dict[int, float]:
    """Median gap (ms) between consecutive step_completed events over the 20 steps
    before each index in ``at`` (the median ignores the odd scheduler hiccup of a
    shared machine)."""
    times = [e.created_at for e in world.events.list(run_id) if e.event_type == "step_completed"]
    gaps = [(b - a).total_seconds() * 1000 for a, b in itertools.pairwise(times)]
    out: dict[int, float] = {}
    for index in at:
        window = gaps[max(0, index - 20) : index]
        if index <= len(gaps) + 1 and window:
            out[index] = statistics.median(window)
    return out


async def run_shape(
    kind: str, workflow_id: str, n: int, directory: Path, **options: Any
) -> dict[str, Any]:
    """Run one shape once on a fresh world; the row's measurements."""
    world = make_world(kind, directory)
    counting = _CountingEvents(world.events)
    world.events = counting  # type: ignore[misc]
    try:
        worker = Worker(world=world, poll_interval=0.05, sweep_interval=0, **options)
        began = time.perf_counter()
        cpu_began = time.process_time()
        run = await start(workflow_id, n, world=world)
        await worker.run_until_complete(run.run_id, timeout=600)
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu_began
        expected = sum(range(n))
        assert await run.result(timeout=1) == expected
        row: dict[str, Any] = {
            "world": kind,
            "shape": f"{'sequential' if workflow_id == SEQ_ID else 'gather'} {n}",
            "seconds": elapsed,
            "steps_per_s": n / elapsed,
            "tx": counting.transactions,
            "cpu_ms_per_step": cpu * 1000 / n,
        }
        if workflow_id == SEQ_ID:
            row["per_step"] = _per_step_ms(world, run.run_id, [10, 100, 1000])
        return row
    finally:
        _dispose(world)


async def time_to_first_step(kind: str, directory: Path, samples: int = 5) -> dict[str, float]:
    """With a worker already running and idle: start() → first step_started, and
    start() → result in hand, median over ``samples`` runs (ms)."""
    world = make_world(kind, directory)
    stop = asyncio.Event()
    worker = Worker(world=world, poll_interval=0.05, sweep_interval=0)
    serving = asyncio.create_task(worker.run(stop_event=stop))
    first_step: list[float] = []
    round_trip: list[float] = []
    try:
        for _ in range(samples):
            await asyncio.sleep(0.2)  # let the worker go idle
            began = time.perf_counter()
            run = await start(SEQ_ID, 1, world=world)
            await run.result(timeout=30)
            round_trip.append((time.perf_counter() - began) * 1000)
            events = world.events.list(run.run_id)
            started = next(e for e in events if e.event_type == "step_started")
            first_step.append((started.created_at - events[0].created_at).total_seconds() * 1000)
    finally:
        stop.set()
        await serving
        _dispose(world)
    return {"ttfs": statistics.median(first_step), "result": statistics.median(round_trip)}


def _fresh_postgres_database() -> str:
    import sqlalchemy

    url = sqlalchemy.make_url(postgres_bench_url()).set(drivername="postgresql+psycopg")
    name = f"dbos_bench_{time.time_ns()}"
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return url.set(database=name, drivername="postgresql").render_as_string(hide_password=False)


def run_dbos(n: int, parallel: bool, directory: Path, kind: str = "local") -> dict[str, Any] | None:
    """The same shape on DBOS with SQLite (local) or Postgres, in a fresh process (DBOS
    keeps one global instance per process); None when ``dbos`` is not installed."""
    import importlib.util
    import json
    import subprocess
    import sys

    if importlib.util.find_spec("dbos") is None:
        return None
    if kind == "postgres":
        # DBOS takes a database of its own on the same server.
        database = _fresh_postgres_database()
    else:
        database = f"sqlite:///{directory / f'dbos-{time.time_ns()}.db'}"
    command = [sys.executable, "-m", "bench.dbos_peer", "--steps", str(n), "--db", database]
    if parallel:
        command.append("--parallel")
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    finally:
        if kind == "postgres":
            _drop_postgres_database(database)
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return row


def _drop_postgres_database(database: str) -> None:
    import sqlalchemy

    url = sqlalchemy.make_url(database)
    admin = url.set(drivername="postgresql+psycopg", database="postgres")
    engine = sqlalchemy.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {url.database} WITH (FORCE)"))
    engine.dispose()


def _fmt_row(row: dict[str, Any], dbos_row: dict[str, Any] | None) -> str:
    per = row.get("per_step", {})
    cells = [
        f"{row['world']:<7}",
        f"{row['shape']:<16}",
        f"{row['seconds']:>8.3f}",
        f"{row['steps_per_s']:>10.0f}",
        f"{row['tx']:>6}",
        f"{row['cpu_ms_per_step']:>8.3f}",
    ]
    for index in (10, 100, 1000):
        cells.append(f"{per[index]:>8.3f}" if index in per else f"{'-':>8}")
    if dbos_row is not None:
        cells.append(
            f"{dbos_row['steps_per_s']:>9.0f} ({row['steps_per_s'] / dbos_row['steps_per_s']:.1f}x)"
        )
    return " ".join(cells)


def main(argv: list[str] | None = None) -> None:
    """Run every shape on every world and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="memory,local")
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--no-provisional", action="store_true", help="two transactions per step")
    parser.add_argument("--no-cache", action="store_true", help="full replay on every message")
    parser.add_argument(
        "--queued", action="store_true", help="no inline steps: every step goes through the queue"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best is shown")
    args = parser.parse_args(argv)
    register()
    sizes = [int(s) for s in args.sizes.split(",")]
    options = {
        "provisional": not args.no_provisional,
        "replay_cache": not args.no_cache,
        "inline_steps": not args.queued,
    }
    header = (
        f"{'world':<7} {'shape':<16} {'total s':>8} {'steps/s':>10} {'tx':>6} {'cpu/step':>8} "
        f"{'ms@10':>8} {'ms@100':>8} {'ms@1000':>8}"
    )
    print(header + ("  dbos steps/s (ratio)" if _has_dbos() else ""))
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        shapes: list[tuple[str, Callable[[int], bool]]] = [
            (SEQ_ID, lambda _n: True),
            (GATHER_ID, lambda _n: True),
        ]
        for kind in args.worlds.split(","):
            for workflow_id, _wanted in shapes:
                for n in sizes:
                    # Best of --repeat: the machine may be shared; the best run is the
                    # one least disturbed by other processes.
                    row = min(
                        (
                            asyncio.run(run_shape(kind, workflow_id, n, directory, **options))
                            for _ in range(args.repeat)
                        ),
                        key=lambda r: r["seconds"],
                    )
                    dbos_row = (
                        run_dbos(n, workflow_id == GATHER_ID, directory, kind)
                        if kind in ("local", "postgres")
                        else None
                    )
                    print(_fmt_row(row, dbos_row), flush=True)
        for kind in args.worlds.split(","):
            ttfs = asyncio.run(time_to_first_step(kind, directory))
            print(
                f"{kind:<7} start() → first step {ttfs['ttfs']:.2f} ms, → result "
                f"{ttfs['result']:.2f} ms (worker already running, median of 5)",
                flush=True,
            )


def _has_dbos() -> bool:
    try:
        import dbos  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
