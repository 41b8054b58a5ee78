"""Fault-test harness: examples/ built once, worlds that other processes can open by
spec, real ``wfkit worker`` processes to start and SIGKILL, and the CLI as a subprocess.

Every wait here is bounded, and every process a test starts is killed in a finally
(the ``workers`` fixture), whatever the test's outcome.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import postgres_url

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

PG_MARKS = [
    pytest.mark.postgres,
    pytest.mark.skipif(not postgres_url(), reason="WFKIT_TEST_POSTGRES_URL not set (CI sets it)"),
]
PROCESS_WORLDS = [pytest.param("local"), pytest.param("postgres", marks=PG_MARKS)]
ALL_WORLDS = [pytest.param("memory"), *PROCESS_WORLDS]


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/ built once per session and loaded into this process."""
    import wfbuild
    from wfkit.runtime.loading.loader import load_build

    out = tmp_path_factory.mktemp("faults-build")
    wfbuild.build([ROOT / "examples"], root=ROOT, out=out)
    load_build(out, root=ROOT)
    return out


@dataclass
class WorldHandle:
    """A world open in this process, plus the spec other processes open it with."""

    kind: str
    spec: str
    world: Any

    def reopen(self) -> Any:
        """A second, independent connection to the same world (memory: the same object)."""
        if self.kind == "memory":
            return self.world
        from wfkit.worlds import create_world

        return create_world(self.spec)


def _pg_spec(schema: str) -> str:
    url = postgres_url()
    assert url
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@pytest.fixture
def make_world(tmp_path: Path, build_dir: Path) -> Iterator[Callable[[str], WorldHandle]]:
    """``make_world(kind)``: a fresh memory / local (SQLite file) / Postgres (new schema) world."""
    opened: list[WorldHandle] = []

    def make(kind: str) -> WorldHandle:
        if kind == "memory":
            from wfkit.worlds.memory import MemoryWorld

            handle = WorldHandle(kind, "memory", MemoryWorld())
        elif kind == "local":
            from wfkit.worlds.local import LocalWorld

            spec = f"sqlite:///{tmp_path / f'faults-{len(opened)}.db'}"
            handle = WorldHandle(kind, spec, LocalWorld.from_spec(spec))
        else:
            from wfkit.worlds.postgres import PostgresWorld

            spec = _pg_spec(f"faults_{uuid.uuid4().hex[:12]}")
            handle = WorldHandle(kind, spec, PostgresWorld(spec))
        opened.append(handle)
        return handle

    try:
        yield make
    finally:
        for handle in opened:
            if handle.kind == "postgres":
                handle.world.drop_schema()
            handle.world.close()


class WorkerProcesses:
    """Real ``wfkit worker`` processes on one world; logs go to files in ``log_dir``."""

    def __init__(self, build_dir: Path, log_dir: Path) -> None:
        self.build_dir = build_dir
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0
        self.kills = 0

    def start(
        self,
        spec: str,
        *,
        concurrency: int = 4,
        lease_seconds: float = 2.0,
        sweep_interval: float = 0.0,
        options: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        env = {**os.environ, "WFKIT_BUILD_DIR": str(self.build_dir), "PYTHONUNBUFFERED": "1"}
        env.pop("WFKIT_WORLD", None)
        self.started += 1
        log = open(self.log_dir / f"worker-{self.started}.log", "wb")
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "wfkit",
                    "--world",
                    spec,
                    "worker",
                    "--concurrency",
                    str(concurrency),
                    "--lease-seconds",
                    str(lease_seconds),
                    "--sweep-interval",
                    str(sweep_interval),
                    *options,
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self.procs.append(proc)
        return proc

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
        """Until the worker has loaded the build and opened the world (its banner line)."""
        number = self.procs.index(proc) + 1
        wait_until(
            lambda: "wfkit worker:" in self.log(number) or proc.poll() is not None,
            timeout,
            f"worker {number} to start",
        )

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL one worker (no shutdown, no acks, no lease hand-back) and reap it."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            self.kills += 1
        proc.wait(timeout=10)

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
        """SIGTERM (graceful), then SIGKILL if it does not exit in time."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill(proc)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
                pass

    def crashed(self) -> list[str]:
        """Logs of workers that exited on their own with an error (not killed by us)."""
        bad = []
        for i, proc in enumerate(self.procs, start=1):
            code = proc.poll()
            if code not in (None, 0, -signal.SIGKILL, -signal.SIGTERM):
                bad.append(self.log(i))
        return bad

    def log(self, number: int) -> str:
        path = self.log_dir / f"worker-{number}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(
            f"--- worker {i} ---\n{self.log(i)[-3000:]}" for i in range(1, self.started + 1)
        )


@pytest.fixture
def workers(build_dir: Path, tmp_path: Path) -> Iterator[WorkerProcesses]:
    """Starts worker processes; every one left is SIGKILLed after the test."""
    procs = WorkerProcesses(build_dir, tmp_path)
    try:
        yield procs
    finally:
        procs.kill_all()


def wfkit_cli(
    spec: str, *args: str, build_dir: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m wfkit --world SPEC ARGS…`` to completion."""
    env = {**os.environ}
    env.pop("WFKIT_WORLD", None)
    if build_dir is not None:
        env["WFKIT_BUILD_DIR"] = str(build_dir)
    return subprocess.run(
        [sys.executable, "-m", "wfkit", "--world", spec, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_async(coro: Any, timeout: float = 120) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def wait_until(predicate: Callable[[], T], timeout: float, what: str, every: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def event_types(world: Any, run_id: str) -> list[str]:
    return [e.event_type for e in world.events.list(run_id)]


def completions_per_step(world: Any, run_id: str) -> Counter[str]:
    """How many ``step_completed`` events each step (correlation id) of the run has."""
    return Counter(
        e.correlation_id for e in world.events.list(run_id) if e.event_type == "step_completed"
    )


def assert_recorded_once(world: Any, run_ids: list[str]) -> None:
    """Every step of every run has exactly one terminal event, and its record is completed."""
    for run_id in run_ids:
        completed = completions_per_step(world, run_id)
        twice = {cid: n for cid, n in completed.items() if n != 1}
        assert not twice, f"{run_id}: steps completed more than once: {twice}"
        steps = world.steps.list(run_id)
        assert {s.step_id for s in steps} == set(completed), run_id
        assert all(s.status == "completed" for s in steps), run_id


def assert_chains_ended_cleanly(world: Any, spec: str, run_ids: list[str], steps: int) -> None:
    """Runs of ``faults.chain(steps, …)`` after faults: each returned ``[0 … steps-1]``,
    each step was created once and completed once, and ``wfkit verify`` finds every
    record equal to its log's fold (a write half in the log would leave one that is not)."""
    from wfkit.runtime.api.client import Run

    for rid in run_ids:
        assert Run(rid, world).result_sync(timeout=1) == list(range(steps)), rid
    assert_recorded_once(world, run_ids)
    for rid in run_ids:
        created = Counter(
            e.correlation_id for e in world.events.list(rid) if e.event_type == "step_created"
        )
        assert len(created) == steps and set(created.values()) == {1}, (rid, created)
    verify = wfkit_cli(spec, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "every materialized record equals" in verify.stdout


def describe_unfinished(world: Any, run_ids: list[str]) -> str:
    """Why runs are stuck: status, whether a message is live, the tail of the log, steps."""
    live = world.queue.live_run_ids()
    lines = []
    for run_id in run_ids:
        record = world.runs.get(run_id)
        if record.status in ("completed", "failed", "cancelled"):
            continue
        events = list(world.events.list(run_id))
        t0 = events[0].created_at
        tail = [
            f"{e.event_type}:{(e.correlation_id or '')[-6:]}"
            f"@{(e.created_at - t0).total_seconds():.3f}"
            for e in events[-8:]
        ]
        steps = [
            f"{s.step_id[-6:]}={s.status}/{s.attempt}@{(s.updated_at - t0).total_seconds():.3f}"
            for s in world.steps.list(run_id)
        ]
        lines.append(
            f"{run_id} {record.workflow_name.rsplit('//', 1)[-1]} {record.status} "
            f"live_message={run_id in live} events={len(events)} tail={tail} steps={steps}"
        )
    return "\n".join(lines)
