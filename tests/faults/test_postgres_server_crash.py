"""The Postgres server crashes under working workers (DESIGN.md §6: runs survive crashes).

A private cluster (``initdb`` into a temporary directory, its own port) so the crash
touches no other test: two real ``wfkit worker`` processes drive 60 runs of six
sequential steps; mid-way the server is stopped with ``pg_ctl stop -m immediate``
(every backend SIGQUIT, no shutdown checkpoint: on the next start the server
recovers from its WAL, as after a power cut or an OOM kill), left down for a moment,
then started again.

What a user would notice, and what must hold: the workers ride it out (no worker
exits), every run completes with the right result, no step's completion is
recorded twice and each step is created once, and ``wfkit verify`` finds the records
equal to the logs; the workers' logs report the outage in one line per message,
without tracebacks. Queue acks commit with ``synchronous_commit off``
(``worlds/postgres/queue.py``): the crash may lose the last acks, whose messages
come back; the log's guards must absorb them.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.e2e import faults
from tests.faults.conftest import (
    WorkerProcesses,
    assert_chains_ended_cleanly,
    describe_unfinished,
    wait_until,
)
from wfkit.runtime.api.client import start_sync
from wfkit.worlds.base import RUN_TERMINAL

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

RUNS = 60
STEPS = 6
STEP_SECONDS = 0.15


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateCluster:
    """A throw-away Postgres cluster this test may crash. Run as the ``postgres`` user
    when the tests run as root (the server refuses to run as root)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.as_root = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="wfkit-pgcrash-"))
        self.data = self.directory / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if self.as_root:
            shutil.chown(self.directory, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def init(self) -> None:
        done = self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust")
        assert done.returncode == 0, done.stdout + done.stderr
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.directory}'\n"
                "max_connections = 60\nshared_buffers = 32MB\nfsync = on\n"
            )

    def start(self) -> None:
        log = self.directory / "server.log"
        done = self._run("pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "start")
        assert done.returncode == 0, done.stdout + done.stderr + log.read_text(errors="replace")

    def crash(self) -> None:
        """``-m immediate``: backends are killed, nothing is checkpointed or flushed."""
        done = self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        assert done.returncode == 0, done.stdout + done.stderr

    def remove(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", timeout=30)
        shutil.rmtree(self.directory, ignore_errors=True)

    def recovered(self) -> bool:
        log = (self.directory / "server.log").read_text(errors="replace")
        return "database system was interrupted" in log or "not properly shut down" in log


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    bin_dir = _bin_dir()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        if os.environ.get("CI"):
            pytest.fail("CI=true but no Postgres server binaries (pg_ctl) to crash")
        pytest.skip("no Postgres server binaries (pg_ctl) here")
    made = PrivateCluster(bin_dir)
    try:
        made.init()
        made.start()
        yield made
    finally:
        made.remove()


def test_a_postgres_crash_under_working_workers_loses_nothing(
    cluster: PrivateCluster, workers: WorkerProcesses
) -> None:
    from wfkit.worlds.postgres import PostgresWorld

    world = PostgresWorld(cluster.url)
    try:
        run_ids = [
            start_sync(faults.chain, STEPS, STEP_SECONDS, world=world).run_id for _ in range(RUNS)
        ]
        for _ in range(2):
            workers.wait_ready(workers.start(cluster.url, concurrency=16))

        def completions() -> int:
            return sum(
                1
                for rid in run_ids
                for e in world.events.list(rid)
                if e.event_type == "step_completed"
            )

        def unfinished() -> int:
            return sum(world.runs.get(rid).status not in RUN_TERMINAL for rid in run_ids)

        try:
            wait_until(lambda: completions() >= RUNS * 2, 60, "a third of the steps to complete")
            assert unfinished() > 0, "the runs ended before the crash"
            cluster.crash()
            time.sleep(1.5)  # the workers find the server gone
            cluster.start()
            assert cluster.recovered(), "the server did not go through crash recovery"
            wait_until(
                lambda: unfinished() == 0, 120, "every run to end after the crash", every=0.3
            )
        except AssertionError:
            print(workers.logs())
            print(describe_unfinished(world, run_ids))
            raise
        assert not workers.crashed(), workers.crashed()
        assert len(workers.alive()) == 2, workers.logs()
        # An outage is reported in one line per message, not a traceback each.
        logs = "\n".join(workers.log(n) for n in range(1, workers.started + 1))
        assert "Traceback" not in logs, logs

        assert_chains_ended_cleanly(world, cluster.url, run_ids, STEPS)
    finally:
        world.close()
