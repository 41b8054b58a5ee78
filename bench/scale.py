"""M concurrent runs across worker processes: throughput against the database's limit.

    .venv/bin/python -m bench.scale [--worlds local,postgres] [--workers 1,2,4]
                                    [--runs 100] [--steps 10] [--concurrency 64]
                                    [--commits 2000] [--no-dbos]

For each world and worker count: a fresh world (a SQLite file, or a new schema in
the Postgres database named by ``WFKIT_BENCH_POSTGRES_URL`` or
``WFKIT_TEST_POSTGRES_URL``), that many real ``wfkit worker`` processes (started
and ready before the clock starts), then M runs of ``examples/e2e/faults.py::ten``
(S sequential trivial steps each) started at once from this process with one
``start_many_sync`` call (a few hundred runs per transaction; workers pick up the
first chunk's runs while later chunks are written). Printed per row: the start
phase (how long ``start_many_sync`` took, ``start s``), wall time from the first
``run_created`` to the last ``run_completed``, steps/s,
steps/s as a fraction of the database's raw commit rate, the p50/p99 time from
``start()`` to a run's first step (the first ``step_started`` event's
``created_at`` minus ``run_created``'s) and to its end (``run_completed``'s), and
the worker processes' CPU per run (user + system from ``/proc``, between the
workers being ready and the last run ending): with more workers than cores, or a
database on the same machine, steps/s says little about the engine's own cost.

The raw commit rate (``bench.commit_rate``: single-row insert + commit
transactions from one connection and from two) is measured in the same
invocation, just before each world's rows, because a shared machine's disk and
CPU vary by the minute; ``of limit`` divides steps/s by the higher of the two
rates. A sequential step costs at least one commit, so 1.00 would be a world
whose steps cost nothing but the database's commit (group commit across runs
is how a world may exceed it).

Where ``dbos`` is importable (a bench-only dependency: ``pip install dbos``), the
same shape runs on DBOS on the same database (SQLite file, or a fresh Postgres
database on the same server) in the same invocation: M workflows of S
sequential trivial ``@DBOS.step`` calls, all started at once with
``DBOS.start_workflow_async`` in one DBOS process (``bench.dbos_peer --runs``).
That process is DBOS's executor, so it compares with wfkit's 1-worker row; its
start→complete times are measured by the caller. DBOS has no separate
time-to-first-step record, so those cells are blank.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORKFLOW = "workflow//./examples/e2e/faults//ten"

from wfkit.runtime.engine.worker import DEFAULT_CONCURRENCY  # noqa: E402


def _postgres_url() -> str | None:
    return os.environ.get("WFKIT_BENCH_POSTGRES_URL") or os.environ.get("WFKIT_TEST_POSTGRES_URL")


def _open_world(kind: str, tmp: Path, label: str) -> tuple[str, Any]:
    from wfkit.worlds import create_world

    if kind == "local":
        spec = f"sqlite:///{tmp / f'scale-{label}.db'}"
    else:
        url = _postgres_url()
        if not url:
            raise SystemExit("bench.scale: set WFKIT_BENCH_POSTGRES_URL for the postgres world")
        spec = f"{url}{'&' if '?' in url else '?'}schema=bench_scale_{uuid.uuid4().hex[:10]}"
    return spec, create_world(spec)


def _start_workers(
    spec: str, count: int, build_dir: Path, concurrency: int, logs: Path
) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "WFKIT_BUILD_DIR": str(build_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("WFKIT_WORLD", None)
    procs = []
    for i in range(count):
        with open(logs / f"worker-{i}.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "wfkit",
                        "--world",
                        spec,
                        "worker",
                        "--concurrency",
                        str(concurrency),
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    deadline = time.monotonic() + 60
    for i, proc in enumerate(procs):
        while b"wfkit worker:" not in (logs / f"worker-{i}.log").read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"worker {i} did not start:\n{(logs / f'worker-{i}.log').read_text()}"
                )
            time.sleep(0.05)
    return procs


def _stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU the processes have used so far (Linux /proc), None elsewhere."""
    total = 0.0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return total


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure(
    kind: str,
    workers: int,
    *,
    runs: int,
    steps: int,
    concurrency: int,
    build_dir: Path,
    tmp: Path,
    timeout: float,
) -> dict[str, Any]:
    from wfkit.runtime.api.start_many import start_many_sync

    label = f"{kind}-{workers}"
    logs = tmp / label
    logs.mkdir()
    spec, world = _open_world(kind, tmp, label)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = _start_workers(spec, workers, build_dir, concurrency, logs)
        cpu_began = _cpu_seconds([p.pid for p in procs])
        began = time.monotonic()
        run_ids = [run.run_id for run in start_many_sync(WORKFLOW, [(steps,)] * runs, world=world)]
        start_s = time.monotonic() - began
        # Wait for the end by asking for ONE unfinished run at a time: listing the
        # finished ones (thousands of records decoded every poll) took ~40 ms of CPU
        # each time, a third of a core taken from the workers being measured.
        while True:
            if time.monotonic() - began > timeout:
                raise SystemExit(f"{label}: runs unfinished after {timeout} s")
            failed = world.runs.list(status="failed", limit=1)
            if failed:
                raise SystemExit(f"{label}: run {failed[0].run_id} failed: {failed[0].error}")
            if not (
                world.runs.list(status="pending", limit=1)
                or world.runs.list(status="running", limit=1)
            ):
                break
            time.sleep(0.1)
        cpu_ended = _cpu_seconds([p.pid for p in procs])
        unfinished = len(run_ids) - len(world.runs.list(status="completed", limit=runs * 2))
        if unfinished:
            raise SystemExit(f"{label}: {unfinished} runs neither pending, running nor completed")
        firsts: list[float] = []
        completes: list[float] = []
        created: list[Any] = []
        ended: list[Any] = []
        for run_id in run_ids:
            events = world.events.list(run_id)
            run_created = next(e for e in events if e.event_type == "run_created")
            first_step = next(e for e in events if e.event_type == "step_started")
            run_completed = next(e for e in events if e.event_type == "run_completed")
            firsts.append((first_step.created_at - run_created.created_at).total_seconds())
            completes.append((run_completed.created_at - run_created.created_at).total_seconds())
            created.append(run_created.created_at)
            ended.append(run_completed.created_at)
        wall = (max(ended) - min(created)).total_seconds()
        cpu: dict[str, float] = {}
        if cpu_began is not None and cpu_ended is not None:
            cpu["worker_cpu_ms_per_run"] = 1000 * (cpu_ended - cpu_began) / runs
        return {
            **cpu,
            "world": kind,
            "workers": workers,
            "runs": runs,
            "steps": runs * steps,
            "start_s": start_s,
            "wall_s": wall,
            "steps_per_s": runs * steps / wall,
            "first_p50_ms": 1000 * statistics.median(firsts),
            "first_p99_ms": 1000 * _percentile(firsts, 0.99),
            "complete_p50_ms": 1000 * statistics.median(completes),
            "complete_p99_ms": 1000 * _percentile(completes, 0.99),
        }
    finally:
        _stop_workers(procs)
        drop = getattr(world, "drop_schema", None)
        if callable(drop):
            drop()
        world.close()


def _ms(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:>9.1f}" if key in row else f"{'-':>9}"


def _seconds(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:>7.2f}" if key in row else f"{'-':>7}"


def _table(rows: list[dict[str, Any]], limits: dict[str, dict[str, float]]) -> str:
    header = (
        f"{'engine':<16} {'workers':>7} {'runs':>5} {'steps':>6} {'start s':>7} {'wall s':>7}"
        f" {'steps/s':>8} {'of limit':>8} {'first p50':>9} {'first p99':>9}"
        f" {'done p50':>9} {'done p99':>9} {'CPU ms/run':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        limit = max(limits[r["world"]].values())
        engine = f"{r.get('engine', 'wfkit')} {r['world']}"
        lines.append(
            f"{engine:<16} {r['workers']:>7} {r['runs']:>5} {r['steps']:>6}"
            f" {_seconds(r, 'start_s')} {r['wall_s']:>7.2f}"
            f" {r['steps_per_s']:>8.0f} {r['steps_per_s'] / limit:>8.2f}"
            f" {_ms(r, 'first_p50_ms')} {_ms(r, 'first_p99_ms')}"
            f" {_ms(r, 'complete_p50_ms')} {_ms(r, 'complete_p99_ms')}"
            f" {_ms(r, 'worker_cpu_ms_per_run'):>10}"
        )
    lines.append("")
    lines.append("raw commit rate (single-row insert + commit), measured in this invocation:")
    for world, rates in limits.items():
        lines.append(
            f"  {world:<9} 1 connection {rates['one']:>7.0f}/s   2 connections {rates['two']:>7.0f}/s"
        )
    lines.append(
        "start s = the start_many_sync call; wall s = first run_created to last run_completed"
    )
    lines.append("times in ms from start(): first = first step started, done = run completed")
    lines.append("CPU ms/run = the worker processes' CPU (user + system) over the runs, per run")
    return "\n".join(lines)


def commit_limit(kind: str, tmp: Path, commits: int) -> dict[str, float]:
    """The raw commit rates of ``kind``'s database (``bench.commit_rate``)."""
    from bench.commit_rate import postgres_commit_rate, sqlite_commit_rate

    if kind == "local":
        return sqlite_commit_rate(tmp / "commit-rate.db", commits)
    url = _postgres_url()
    assert url is not None
    return postgres_commit_rate(url, commits)


def run_dbos(kind: str, runs: int, steps: int, tmp: Path) -> dict[str, Any] | None:
    """bench.scale's shape on DBOS (``bench.dbos_peer --runs``); None without ``dbos``."""
    import importlib.util
    import json

    if importlib.util.find_spec("dbos") is None:
        return None
    from bench.steps import _drop_postgres_database, _fresh_postgres_database

    database = (
        _fresh_postgres_database() if kind == "postgres" else f"sqlite:///{tmp / 'dbos-scale.db'}"
    )
    command = [sys.executable, "-m", "bench.dbos_peer", "--steps", str(steps)]
    command += ["--runs", str(runs), "--db", database]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=1800
        )
    finally:
        if kind == "postgres":
            _drop_postgres_database(database)
    peer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "engine": "dbos",
        "world": kind,
        "workers": 1,
        "runs": runs,
        "steps": runs * steps,
        "wall_s": peer["seconds"],
        "steps_per_s": peer["steps_per_s"],
        "complete_p50_ms": peer["complete_p50_ms"],
        "complete_p99_ms": peer["complete_p99_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", default="local,postgres")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"per worker process (default: the worker's own, {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--timeout", type=float, default=120, help="per row")
    parser.add_argument(
        "--commits", type=int, default=2000, help="transactions per raw commit-rate measurement"
    )
    parser.add_argument("--no-dbos", action="store_true", help="skip DBOS even when installed")
    args = parser.parse_args(argv)

    import wfbuild

    worlds = [w for w in args.worlds.split(",") if w]
    if "postgres" in worlds and not _postgres_url():
        print("bench.scale: no WFKIT_BENCH_POSTGRES_URL; skipping postgres", file=sys.stderr)
        worlds.remove("postgres")
    rows = []
    limits: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="wfkit-scale-") as tmpdir:
        tmp = Path(tmpdir)
        build_dir = tmp / "build"
        wfbuild.build([ROOT / "examples"], root=ROOT, out=build_dir)
        for kind in worlds:
            limits[kind] = commit_limit(kind, tmp, args.commits)
            for count in (int(n) for n in args.workers.split(",")):
                row = measure(
                    kind,
                    count,
                    runs=args.runs,
                    steps=args.steps,
                    concurrency=args.concurrency,
                    build_dir=build_dir,
                    tmp=tmp,
                    timeout=args.timeout,
                )
                rows.append(row)
                print(
                    f"  {kind} x{count}: {row['steps_per_s']:.0f} steps/s, "
                    f"first step p50 {row['first_p50_ms']:.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
            peer = None if args.no_dbos else run_dbos(kind, args.runs, args.steps, tmp)
            if peer is not None:
                rows.append(peer)
    print(
        f"M={args.runs} concurrent runs x {args.steps} sequential trivial steps,"
        f" {os.cpu_count()} CPUs, --concurrency {args.concurrency} per worker process"
    )
    print(_table(rows, limits))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
