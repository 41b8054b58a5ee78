# mypy: disallow-untyped-decorators=False
"""CPU per run of the many-runs shape, in one process: where a worker's time goes.

    .venv/bin/python -m bench.worker_cpu [--worlds memory,local,postgres]
                                         [--runs 2000] [--steps 5] [--concurrency 64]
                                         [--repeat 3] [--profile FILE]

``bench.scale`` measures the shape end to end across worker processes; this measures
what one worker spends on it, free of process start-up and of other processes
sharing the machine (with the garbage collector set as ``wfkit worker`` sets it,
``runtime/engine/collector.py``; ``--default-gc`` keeps Python's defaults): M runs of S sequential trivial steps are started
(``start_many_sync``, not timed), then one in-process ``Worker`` drains them
(timed). Printed per world: the best of ``--repeat`` drains as wall time,
steps/s, and CPU ms per run (``time.process_time``: this process's CPU in all
its threads, the writer thread's and SQLite's included; on Postgres the server's
CPU is not). With ``--profile FILE`` the last local drain runs under cProfile
(the loop's thread only) and its stats are written to FILE.

For the local world, ``lock ms/run`` is the CPU its writers spent holding the
write lock that every worker process of one SQLite file shares (the thread CPU
between taking and giving back ``WriteGate``): the part of a run that two worker
processes cannot do at once. ``1 / lock ms/run`` bounds runs/s however many
processes share the file.

CPU per run is the figure to watch: on a 2-core machine, 10,000 steps/s of this
shape (5 steps per run) over two worker processes leaves 1 ms of CPU per run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import math
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench.steps import SEQ_ID, _dispose, make_world, register
from wfkit.runtime.api.start_many import start_many_sync
from wfkit.runtime.engine.collector import tune_for_worker
from wfkit.runtime.engine.worker import Worker
from wfkit.worlds.base import World


class _LockClock:
    """Counts the thread CPU spent holding a local world's write gate (``WriteGate``,
    wrapped on the instance); its holders are serialized, so one start time does."""

    def __init__(self, gate: Any) -> None:
        self.cpu = 0.0
        self.held = 0
        self._since = 0.0
        acquire, release = gate.acquire, gate.release

        def timed_acquire(*args: Any, **kwargs: Any) -> Any:
            fd = acquire(*args, **kwargs)
            self._since = time.thread_time()
            return fd

        def timed_release(fd: Any) -> None:
            self.cpu += time.thread_time() - self._since
            self.held += 1
            release(fd)

        gate.acquire, gate.release = timed_acquire, timed_release


def drain_once(
    world: World, runs: int, steps: int, concurrency: int, profile: cProfile.Profile | None
) -> dict[str, float]:
    """Start ``runs`` runs, then time one worker draining them."""
    start_many_sync(SEQ_ID, [(steps,)] * runs, world=world)
    gate = getattr(world, "_gate", None)  # the local world's write gate
    lock = _LockClock(gate) if gate is not None else None
    worker = Worker(world, concurrency=concurrency, sweep_interval=0, flow_interval=0)
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        asyncio.run(worker.drain(timeout=600))
        if profile is not None:
            profile.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        worker.close()
    done = len(world.runs.list(status="completed", limit=runs * 10))
    if lock is not None:
        del gate.acquire, gate.release  # the class's again
    lock_cpu = float("nan") if lock is None else lock.cpu
    return {"wall": wall, "cpu": cpu, "completed": done, "lock_cpu": lock_cpu}


def measure(kind: str, args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    best: dict[str, float] | None = None
    for attempt in range(args.repeat):
        world = make_world(kind, directory)
        try:
            drain_once(world, 20, args.steps, args.concurrency, None)  # warm up
            last = attempt == args.repeat - 1
            profile = cProfile.Profile() if args.profile and last and kind == "local" else None
            got = drain_once(world, args.runs, args.steps, args.concurrency, profile)
            if got["completed"] != args.runs + 20:
                raise SystemExit(f"{kind}: {got['completed']} of {args.runs + 20} runs completed")
            if profile is not None:
                profile.dump_stats(args.profile)
        finally:
            _dispose(world)
        if best is None or got["cpu"] < best["cpu"]:
            best = got
    assert best is not None
    steps = args.runs * args.steps
    return {
        "world": kind,
        "wall_s": best["wall"],
        "steps_per_s": steps / best["wall"],
        "cpu_ms_per_run": 1000 * best["cpu"] / args.runs,
        "cpu_us_per_step": 1e6 * best["cpu"] / steps,
        "lock_ms_per_run": 1000 * best["lock_cpu"] / args.runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.worker_cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", default="memory,local")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="", help="cProfile stats file (local world)")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="keep Python's collector settings (default: as `wfkit worker` sets them)",
    )
    args = parser.parse_args(argv)
    register()
    threshold = tune_for_worker(0 if args.default_gc else None)
    rows = []
    with TemporaryDirectory(prefix="wfkit-worker-cpu-") as tmp:
        for kind in [w for w in args.worlds.split(",") if w]:
            rows.append(measure(kind, args, Path(tmp)))
    print(
        f"{args.runs} runs x {args.steps} sequential trivial steps, one in-process worker,"
        f" --concurrency {args.concurrency}, best CPU of {args.repeat},"
        f" gc young threshold {threshold}"
    )
    print(
        f"{'world':<9} {'wall s':>7} {'steps/s':>8} {'CPU ms/run':>10} {'CPU us/step':>11}"
        f" {'lock ms/run':>11}"
    )
    for r in rows:
        lock_ms = r["lock_ms_per_run"]
        lock = "-" if math.isnan(lock_ms) else f"{lock_ms:.3f}"
        print(
            f"{r['world']:<9} {r['wall_s']:>7.2f} {r['steps_per_s']:>8.0f}"
            f" {r['cpu_ms_per_run']:>10.3f} {r['cpu_us_per_step']:>11.1f} {lock:>11}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
