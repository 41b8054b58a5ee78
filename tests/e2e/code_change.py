"""A throwaway project driven by real ``wfkit worker`` processes across code changes.

Shared by SCENARIO 36 (``patched``) and 38 (``wfkit retry``): write a version of
``app/flows.py``, build it with ``python -m wfbuild build``, run workers on it, and
read the world from the test to check runs and their logs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import postgres_url

WORLDS = [pytest.param("local", id="local")]
if postgres_url():
    WORLDS.append(pytest.param("postgres", id="postgres", marks=pytest.mark.postgres))
else:
    WORLDS.append(pytest.param("postgres", id="postgres", marks=pytest.mark.skip("no Postgres")))

HELPER = """
import asyncio, json, sys
import wfkit
from app import flows

async def main() -> None:
    if sys.argv[1] == "start":
        for arg in sys.argv[2:]:
            run = await wfkit.start(flows.flow, arg)
            print(run.run_id)
    elif sys.argv[1] == "results":
        for run_id in sys.argv[2:]:
            run = wfkit.get_run(run_id)
            print(json.dumps(await run.result(timeout=60), sort_keys=True))

asyncio.run(main())
"""


class Project:
    """One project directory, its world spec and the world opened in the test."""

    def __init__(self, root: Path, world_kind: str) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.kind = world_kind
        if world_kind == "postgres":
            self.schema = f"e2e_{uuid.uuid4().hex[:12]}"
            self.env["WFKIT_WORLD"] = f"{postgres_url()}?schema={self.schema}"
        else:
            self.env["WFKIT_WORLD"] = f"sqlite:///{root / 'app.db'}"
        self._world: Any = None

    @property
    def world(self) -> Any:
        """The project's world, opened in this process (for reading runs and logs)."""
        if self._world is None:
            from wfkit.runtime.world_config import get_world

            self._world = get_world(self.env["WFKIT_WORLD"])
        return self._world

    def write(self, flows: str) -> None:
        """Make ``flows`` the project's workflow code and build it."""
        (self.root / "app" / "flows.py").write_text(textwrap.dedent(flows))
        built = self.python("-m", "wfbuild", "build")
        assert built.returncode == 0, built.stdout + built.stderr

    def python(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``python ARGS`` in the project (no worker of its own)."""
        return subprocess.run(
            [sys.executable, *args], cwd=self.root, env=self.env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip

    def start(self, *args: str) -> list[str]:
        """Start one run of ``flow`` per argument; their run ids."""
        started = self.python("helper.py", "start", *args)
        assert started.returncode == 0, started.stderr
        return started.stdout.split()

    def results(self, *run_ids: str) -> list[str]:
        """The runs' results as sorted JSON, one per run (waits up to 60 s each)."""
        done = self.python("helper.py", "results", *run_ids)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.splitlines()

    def kinds(self, run_id: str) -> list[str]:
        """The run's event types, in log order."""
        return [e.event_type for e in self.world.events.list(run_id)]

    @contextmanager
    def worker(self) -> Iterator[subprocess.Popen[str]]:
        """A ``wfkit worker`` process on the current build, stopped (SIGTERM) on exit.

        It adopts the runs of every other deployment (``--adopt all``): runs started on
        earlier code move to this code, which is what these scenarios change code under
        (without it, runs stay pinned to the build they started on).
        """
        proc = subprocess.Popen(
            [sys.executable, "-m", "wfkit", "worker", "--concurrency", "4", "--adopt", "all"],
            cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()

    def close(self) -> None:
        """Close the world (and drop the Postgres schema)."""
        world = self.world
        if self.kind == "postgres":
            world.drop_schema()
        world.close()


def wait_until(check: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    """Poll ``check`` until it holds; fail the test naming ``what`` when it never does."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def project_for(tmp_path: Path, world_kind: str, flows: str) -> Iterator[Project]:
    """A built project whose code is ``flows``, on a fresh world of ``world_kind``."""
    root = tmp_path / "proj"
    (root / "app").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "proj"\nversion = "1"\n\n[tool.wfkit]\npaths = ["app"]\n'
    )
    (root / "app" / "__init__.py").write_text("")
    (root / "helper.py").write_text(HELPER)
    project = Project(root, world_kind)
    project.write(flows)
    try:
        yield project
    finally:
        project.close()
