"""Upgrading wfkit loses nothing (issue 9, DESIGN §6a): the worlds wfkit 0.1.0 left
with runs in flight (``databases/``, see README.md) are migrated in place by today's
wfkit, and real worker processes complete those runs.

Each 0.1.0 world holds a run of ``order_flow("o-inflight")`` waiting on the hook
``golden-approve:o-inflight``, a finished run, and a run of ``errors_cross("sku-q")``
queued but never picked up. A ``wfkit worker`` process of today, on today's build of
``app/``, opens the old store (migrating it), serves the queued run, and finishes the
hooked one once this test resumes the hook; ``wfkit verify`` then finds every record
equal to the fold of its log, and the store records exactly one migration.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

import wfbuild
from tests.conftest import postgres_url
from tests.golden.restore import (
    IN_FLIGHT_TOKEN,
    POSTGRES_0_1_SCHEMA,
    copy_local_0_1,
    postgres_0_1,
)
from wfkit.runtime.api.client import resume_hook_sync
from wfkit.runtime.serialization import deserialize
from wfkit.worlds import create_world
from wfkit.worlds.base import World, diff_run_records
from wfkit.worlds.sql import SCHEMA_VERSION
from wfkit.worlds.sql.migrations import MIGRATIONS

HERE = Path(__file__).resolve().parent
FLOWS = "workflow//./goldenapp/flows//"
APPROVAL = {"ok": True, "by": "ann"}
MIGRATED_ONCE = [(step.version, step.summary) for step in MIGRATIONS]
PG_MARKS = [
    pytest.mark.postgres,
    pytest.mark.skipif(not postgres_url(), reason="WFKIT_TEST_POSTGRES_URL is not set"),
]


@dataclass(frozen=True)
class OldStore:
    """A store exactly as wfkit 0.1.0 left it: the ``--world`` spec that names it and
    a raw read of its version row and ``schema_history`` (no wfkit code involved)."""

    spec: str
    read_version: Callable[[], tuple[int, list[tuple[int, str]]]]


def _sqlite_version(path: Path) -> tuple[int, list[tuple[int, str]]]:
    connection = sqlite3.connect(path)
    try:
        (version,) = connection.execute("SELECT version FROM schema_version").fetchone()
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        history = []
        if "schema_history" in names:
            history = connection.execute(
                "SELECT version, summary FROM schema_history ORDER BY seq"
            ).fetchall()
    finally:
        connection.close()
    return version, [(v, summary) for v, summary in history]


def _postgres_version(url: str) -> tuple[int, list[tuple[int, str]]]:
    with psycopg.connect(url) as connection:
        row = connection.execute(f"SELECT version FROM {POSTGRES_0_1_SCHEMA}.schema_version")
        (version,) = row.fetchone() or (None,)
        history = []
        if connection.execute(
            f"SELECT to_regclass('{POSTGRES_0_1_SCHEMA}.schema_history')"
        ).fetchone() != (None,):
            history = connection.execute(
                f"SELECT version, summary FROM {POSTGRES_0_1_SCHEMA}.schema_history ORDER BY seq"
            ).fetchall()
    return version, [(v, summary) for v, summary in history]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``app/`` with today's build in ``.wfkit/build`` (where a worker looks)."""
    root = tmp_path_factory.mktemp("upgrade") / "app"
    shutil.copytree(HERE / "app", root)
    wfbuild.build(root=root, out=root / ".wfkit" / "build")
    return root


@pytest.fixture(params=[pytest.param("local"), pytest.param("postgres", marks=PG_MARKS)])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OldStore]:
    """A store of 0.1.0's, copied (SQLite) or restored (Postgres) for this test."""
    if request.param == "local":
        path = copy_local_0_1(tmp_path / "wfkit.db")
        yield OldStore(f"sqlite:///{path}", lambda: _sqlite_version(path))
        return
    server = postgres_url()
    assert server
    with postgres_0_1(server) as url:
        yield OldStore(f"{url}?schema={POSTGRES_0_1_SCHEMA}", lambda: _postgres_version(url))


def _wfkit(project: Path, spec: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """``wfkit --world SPEC ARGS`` run in the project directory, as an operator would."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WFKIT_")}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "wfkit", "--world", spec, *args],
        cwd=project,
        env=env,
        text=True,
        **popen,
    )


def _wait_for(what: str, done: Callable[[], bool], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()}")
        time.sleep(0.1)


def _stop(worker: subprocess.Popen[str]) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it does not exit in time."""
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=10)


def test_runs_in_flight_under_0_1_complete_after_the_upgrade(
    project: Path, old_store: OldStore, tmp_path: Path
) -> None:
    assert old_store.read_version() == (1, [])
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = _wfkit(project, old_store.spec, "worker", stdout=out, stderr=out)
    world: World | None = None
    try:
        _wait_for("the worker to start", lambda: "wfkit worker:" in log.read_text(), log)
        # The worker migrated the store when it opened it; this process finds it done.
        world = create_world(old_store.spec)
        runs = {run.workflow_name.removeprefix(FLOWS): run for run in world.runs.list()}
        assert sorted(runs) == ["errors_cross", "fan_out", "order_flow"]
        hooked, queued, finished = (
            runs[n].run_id for n in ("order_flow", "errors_cross", "fan_out")
        )

        def status(run_id: str) -> str:
            assert world is not None
            return world.runs.get(run_id).status

        _wait_for("the queued run to complete", lambda: status(queued) == "completed", log)
        assert status(hooked) == "running"  # still waiting for its approval
        assert resume_hook_sync(IN_FLIGHT_TOKEN, APPROVAL, world=world).run_id == hooked
        _wait_for("the hooked run to complete", lambda: status(hooked) == "completed", log)

        # What they returned. The order's output holds goldenapp classes, which this
        # process (no build loaded) reads as stored: tagged JSON.
        assert deserialize(world.runs.get(queued).output) == {
            "left": ("sku-q", 0),
            "refused": "refused: policy",
        }
        order = world.runs.get(hooked).output
        assert order["approval"] == APPROVAL and order["status"] == "ok-o-inflight"
        assert order["receipt"]["v"]["order_id"] == "o-inflight"
        assert status(finished) == "completed"
        for run_id in (hooked, queued, finished):
            assert diff_run_records(world, run_id) == []
    finally:
        _stop(worker)
        if world is not None:
            world.close()
    assert worker.returncode == 0, log.read_text()

    verify = _wfkit(
        project, old_store.spec, "verify", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = verify.communicate(timeout=120)
    assert verify.returncode == 0, out + err
    assert "every materialized record equals a fresh fold of its event log" in out
    # Worker, this test and verify all opened the store: it was migrated once.
    assert old_store.read_version() == (SCHEMA_VERSION, MIGRATED_ONCE)
