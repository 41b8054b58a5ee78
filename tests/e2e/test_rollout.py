"""SCENARIOS.md 35, a rollout, with real ``wfkit worker`` processes on local and Postgres.

A project at v1: ``rollout(n, nap)`` sleeps, then its step ``finish`` reports
``{"version": "v1", "n": n, "pid": …}``. 20 v1 runs start and sleep (the first ten a
few seconds, the last ten long enough to outlive the v1 worker). The code changes to
v2, which inserts a step before the sleep (``prepare``: n * 10) -- replaying a v1 log
on v2 code would diverge at once -- and reports ``"v2"``. A v2 worker starts next to
the v1 worker; new runs start on v2. The v1 worker stops once the first ten v1 runs
are done; the v2 worker finishes the last ten from the v1 build it keeps
(``.wfkit/deployments``), on v1 code. ``wfkit deployments`` shows v1's in-flight runs
draining to 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import wfbuild
from tests.conftest import postgres_url
from wfkit.runtime.serialization import deserialize

pytestmark = pytest.mark.slow

V1 = '''\
"""v1: sleep, then finish."""

import os

from wfkit import sleep


async def finish(n: int) -> dict:
    "use step"
    return {"version": "v1", "n": n, "pid": os.getpid()}


async def rollout(n: int, nap: float) -> dict:
    "use workflow"
    await sleep(nap)
    return await finish(n)
'''

V2 = '''\
"""v2: a new step before the sleep."""

import os

from wfkit import sleep


async def prepare(n: int) -> int:
    "use step"
    return n * 10


async def finish(n: int) -> dict:
    "use step"
    return {"version": "v2", "n": n, "pid": os.getpid()}


async def rollout(n: int, nap: float) -> dict:
    "use workflow"
    prepared = await prepare(n)
    await sleep(nap)
    return await finish(prepared)
'''

CLIENT = """\
import asyncio, json, sys
from wfkit import start
from rollapp.flows import rollout

async def main():
    naps = json.loads(sys.argv[1])
    runs = [await start(rollout, n, nap) for n, nap in enumerate(naps)]
    print(json.dumps([run.run_id for run in runs]))

asyncio.run(main())
"""

V1_RUNS = 20
V2_RUNS = 10
SHORT_NAPS = [2.0 + 0.4 * n for n in range(10)]  # the v1 worker wakes these
LONG_NAP = 30.0  # these outlive the v1 worker


@dataclass
class Project:
    root: Path
    spec: str
    env: dict[str, str]
    logs: list[Path] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def write(self, flows: str) -> str:
        """Write ``rollapp/flows.py``, build, and return the build's deployment ID."""
        (self.root / "rollapp" / "flows.py").write_text(flows)
        wfbuild.build(root=self.root, out=self.root / ".wfkit" / "build")
        from wfkit.runtime.loading.deployments import compute_deployment_id

        return compute_deployment_id(self.root / ".wfkit" / "build")

    def wfkit(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "wfkit", "--world", self.spec, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def start_runs(self, naps: list[float]) -> list[str]:
        result = subprocess.run(
            [sys.executable, "client.py", json.dumps(naps)],
            cwd=self.root,
            env={**self.env, "WFKIT_WORLD": self.spec},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        run_ids: list[str] = json.loads(result.stdout)
        return run_ids

    def worker(self) -> subprocess.Popen[bytes]:
        log_path = self.root.parent / f"worker-{len(self.procs) + 1}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "wfkit", "--world", self.spec, "worker",
                 "--concurrency", "8", "--sweep-interval", "2"],
                cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.procs.append(proc)
        self.logs.append(log_path)
        wait_until(
            lambda: "wfkit worker:" in log_path.read_text() or proc.poll() is not None,
            60,
            "the worker's banner",
        )
        assert proc.poll() is None, log_path.read_text()
        return proc

    def deployments(self) -> dict[str, dict[str, Any]]:
        rows = json.loads(self.wfkit("deployments", "--all", "--json"))
        return {row["deployment"]: row for row in rows}

    def worker_logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.read_text()[-4000:]}" for p in self.logs)


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(
    params=[
        "local",
        pytest.param(
            "postgres",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(
                    not postgres_url(), reason="WFKIT_TEST_POSTGRES_URL not set (CI sets it)"
                ),
            ],
        ),
    ]
)
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "proj"
    (root / "rollapp").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "rollapp"\nversion = "1"\n')
    (root / "rollapp" / "__init__.py").write_text("")
    (root / "client.py").write_text(CLIENT)
    if request.param == "local":
        spec, schema = f"sqlite:///{tmp_path / 'world.db'}", None
    else:
        url = postgres_url()
        assert url
        schema = f"rollout_{uuid.uuid4().hex[:12]}"
        spec = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    made = Project(root, spec, {**env, "PYTHONUNBUFFERED": "1"})
    try:
        yield made
    finally:
        for proc in made.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
        if schema is not None:
            from wfkit.worlds.postgres import PostgresWorld

            world = PostgresWorld(spec)
            world.drop_schema()
            world.close()


def test_a_rollout_finishes_v1_runs_on_v1_code_and_starts_new_runs_on_v2(
    project: Project,
) -> None:
    from wfkit.worlds import create_world

    v1 = project.write(V1)
    naps = SHORT_NAPS + [LONG_NAP] * (V1_RUNS - len(SHORT_NAPS))
    # Started and counted before any worker runs them: on a loaded machine the
    # ``wfkit deployments`` process took longer than the shortest nap (2 s), and
    # the first count came out 12-19 instead of 20.
    v1_runs = project.start_runs(naps)
    drain = [project.deployments()[v1]["in_flight"]]
    v1_worker = project.worker()
    world = create_world(project.spec)
    try:

        def completed(run_ids: list[str]) -> int:
            return sum(world.runs.get(r).status == "completed" for r in run_ids)

        wait_until(lambda: completed(v1_runs) >= 2, 60, "the first v1 runs (v1 worker alone)")
        v2 = project.write(V2)
        assert v2 != v1
        v2_worker = project.worker()  # serves v2, and v1 from the copy kept in .wfkit/deployments
        banner = project.logs[1].read_text()
        assert f"{v2} (newest), {v1}" in banner, banner
        v2_runs = project.start_runs([1.0] * V2_RUNS)
        wait_until(lambda: completed(v1_runs) >= len(SHORT_NAPS), 90, "the short v1 runs")
        drain.append(project.deployments()[v1]["in_flight"])
        v1_worker.send_signal(signal.SIGTERM)  # the old fleet goes away
        assert v1_worker.wait(timeout=60) == 0, project.worker_logs()
        drain.append(project.deployments()[v1]["in_flight"])

        def all_ended() -> bool:
            return all(
                world.runs.get(r).status in ("completed", "failed", "cancelled")
                for r in v1_runs + v2_runs
            )

        wait_until(all_ended, LONG_NAP + 90, "every run to end")
        records = {r: world.runs.get(r) for r in v1_runs + v2_runs}
    finally:
        world.close()
    failed = {r: rec.error for r, rec in records.items() if rec.status != "completed"}
    assert not failed, f"{failed}\n{project.worker_logs()}"
    results = {r: deserialize(rec.output) for r, rec in records.items()}

    # v1 runs finished on v1 code (its step's result), pinned to v1; new runs on v2.
    assert [records[r].deployment_id for r in v1_runs] == [v1] * V1_RUNS
    assert [records[r].deployment_id for r in v2_runs] == [v2] * V2_RUNS
    assert [(results[r]["version"], results[r]["n"]) for r in v1_runs] == [
        ("v1", n) for n in range(V1_RUNS)
    ]
    assert [(results[r]["version"], results[r]["n"]) for r in v2_runs] == [
        ("v2", n * 10) for n in range(V2_RUNS)
    ]
    # Both workers finished v1 runs; only the v2 worker ran v2 code.
    v1_pids = {results[r]["pid"] for r in v1_runs}
    assert v1_pids == {v1_worker.pid, v2_worker.pid}, (v1_pids, v1_worker.pid, v2_worker.pid)
    assert {results[r]["pid"] for r in v2_runs} == {v2_worker.pid}

    final = project.deployments()
    drain.append(final[v1]["in_flight"])
    assert drain[0] == V1_RUNS and drain[-1] == 0
    assert drain == sorted(drain, reverse=True), drain
    assert (final[v1]["completed"], final[v1]["failed"]) == (V1_RUNS, 0)
    assert (final[v2]["in_flight"], final[v2]["completed"], final[v2]["failed"]) == (0, V2_RUNS, 0)
    assert final[v2]["here"] == "current build" and final[v1]["here"] == "kept"
    print(
        f"\n[rollout] {project.spec.split('?')[0].split('://')[0]}: v1 {v1}: {V1_RUNS} runs "
        f"({sum(results[r]['pid'] == v1_worker.pid for r in v1_runs)} finished by the v1 "
        f"worker, {sum(results[r]['pid'] == v2_worker.pid for r in v1_runs)} by the v2 worker "
        f"from the kept build), in flight {drain}; v2 {v2}: {V2_RUNS} runs; failures "
        f"{len(failed)}"
    )
