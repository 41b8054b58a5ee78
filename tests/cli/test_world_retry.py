"""A worker started while Postgres is down waits for it: one line per try, with backoff,
then it serves (issue 10, item 6). "Down" is a port where nothing listens; "up" is a
forwarder opened on that port to the real test server (the server itself is never
restarted)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import postgres_url
from wfkit.runtime.world_config import open_world_retrying
from wfkit.worlds.base import WorldError, WorldUnavailableError

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not postgres_url(), reason="WFKIT_TEST_POSTGRES_URL not set (CI sets it)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Forwarder:
    """Listens on ``port`` and pipes each connection to the real Postgres server."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", port))
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()


def _through(port: int) -> tuple[str, tuple[str, int], str]:
    """(a URL of the test database on ``port`` in a new schema, the real server, schema)."""
    from sqlalchemy.engine import make_url

    url = postgres_url()
    assert url
    real = make_url(url)
    schema = f"retry_{uuid.uuid4().hex[:10]}"
    moved = real.set(port=port).render_as_string(hide_password=False)
    joiner = "&" if "?" in moved else "?"
    return f"{moved}{joiner}schema={schema}", (real.host or "127.0.0.1", real.port or 5432), schema


@pytest.fixture
def down() -> Iterator[tuple[int, str, tuple[str, int]]]:
    """(a closed port, a world URL through it, the real server); the schema dropped after."""
    port = _free_port()
    url, target, _ = _through(port)
    yield port, url, target
    from wfkit.worlds.postgres import PostgresWorld

    real = postgres_url()
    assert real
    schema = url.rsplit("schema=", 1)[1]
    cleanup = PostgresWorld(f"{real}{'&' if '?' in real else '?'}schema={schema}")
    cleanup.drop_schema()
    cleanup.close()


def test_the_backoff_doubles_logs_one_line_per_try_and_gives_up_when_told(
    down: tuple[int, str, tuple[str, int]], caplog: pytest.LogCaptureFixture
) -> None:
    _, url, _ = down
    pauses: list[float] = []
    log = logging.getLogger("wfkit.test_retry")
    with caplog.at_level(logging.WARNING, logger="wfkit.test_retry"):
        with pytest.raises(WorldUnavailableError, match="cannot reach Postgres at"):
            open_world_retrying(url, log=log, delays=(0.5, 2.0), attempts=5, sleep=pauses.append)
    assert pauses == [0.5, 1.0, 2.0, 2.0]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4 and all("\n" not in line for line in lines)
    assert "Connection refused; trying again in 0.5 s (attempt 1)" in lines[0]
    assert "(attempt 4)" in lines[3]


def test_the_world_opens_once_the_server_answers(
    down: tuple[int, str, tuple[str, int]],
) -> None:
    port, url, target = down
    pauses: list[float] = []
    forwarders: list[Forwarder] = []

    def pause(seconds: float) -> None:  # the server "comes up" during the second pause
        pauses.append(seconds)
        if len(pauses) == 2:
            forwarders.append(Forwarder(port, target))

    try:
        world = open_world_retrying(
            url, log=logging.getLogger("wfkit.test_retry"), sleep=pause, attempts=10
        )
        assert world.runs.list() == []
        assert pauses == [0.5, 1.0]  # three tries: the third got through
        world.close()
    finally:
        for forwarder in forwarders:
            forwarder.close()


def test_a_refused_login_is_not_retried() -> None:
    url = postgres_url()
    assert url
    from sqlalchemy.engine import make_url

    wrong = make_url(url).set(username="no_such_role_wfkit").render_as_string(False)
    pauses: list[float] = []
    with pytest.raises(WorldError, match="refused the connection") as refused:
        open_world_retrying(wrong, log=logging.getLogger("wfkit.test_retry"), sleep=pauses.append)
    assert not isinstance(refused.value, WorldUnavailableError)
    assert pauses == []


def test_a_worker_started_while_postgres_is_down_waits_then_serves(
    down: tuple[int, str, tuple[str, int]], tmp_path: Path
) -> None:
    import wfbuild

    port, url, target = down
    build = tmp_path / "build"
    wfbuild.build([ROOT / "examples"], root=ROOT, out=build)
    worker = subprocess.Popen(
        [sys.executable, "-m", "wfkit", "--world", url, "worker", "--no-kept"],
        cwd=ROOT,
        env={**os.environ, "WFKIT_BUILD_DIR": str(build)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr: list[str] = []
    assert worker.stderr is not None and worker.stdout is not None
    reader = threading.Thread(target=lambda: stderr.extend(worker.stderr), daemon=True)
    reader.start()

    def tries() -> list[str]:
        return [line for line in list(stderr) if "cannot reach Postgres" in line]

    forwarder: Forwarder | None = None
    try:
        deadline = time.monotonic() + 60
        while len(tries()) < 3:  # tries at 0, 0.5 and 1.5 s after start-up
            assert time.monotonic() < deadline, "".join(stderr)
            assert worker.poll() is None, "the worker gave up while Postgres was down"
            time.sleep(0.1)
        forwarder = Forwarder(port, target)
        banner = ""
        while "wfkit worker:" not in banner:
            assert time.monotonic() < deadline + 60, "the worker never came up"
            banner = worker.stdout.readline()
        assert "world=postgres" in banner
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        reader.join(timeout=10)
        worker.stdout.close()
        worker.stderr.close()
        if forwarder is not None:
            forwarder.close()
    assert "Traceback" not in "".join(stderr), "".join(stderr)
    lines = tries()
    assert "trying again in 0.5 s (attempt 1)" in lines[0]
    assert "trying again in 1.0 s (attempt 2)" in lines[1]
    assert "trying again in 2.0 s (attempt 3)" in lines[2]


@pytest.mark.parametrize("command", ["serve", "web"])
def test_serve_and_web_wait_for_postgres_one_line_per_try(
    down: tuple[int, str, tuple[str, int]], tmp_path: Path, command: str
) -> None:
    import wfbuild

    _, url, _ = down
    build = tmp_path / "build"
    wfbuild.build([ROOT / "examples"], root=ROOT, out=build)
    extra = ["--no-browser"] if command == "web" else []
    process = subprocess.Popen(
        [sys.executable, "-m", "wfkit", "--world", url, command, "--port", "0", *extra],
        cwd=ROOT,
        env={**os.environ, "WFKIT_BUILD_DIR": str(build)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while len(lines) < 2:
            assert time.monotonic() < deadline, lines
            line = process.stderr.readline()
            assert line, f"wfkit {command} exited: {lines}"
            lines.append(line)
        assert process.poll() is None  # still waiting, not given up
    finally:
        process.terminate()
        process.wait(timeout=60)
        process.stderr.close()
    assert lines[0].startswith(f"wfkit {command}: cannot reach Postgres at "), lines
    assert "trying again in 0.5 s (attempt 1)" in lines[0]
    assert "trying again in 1.0 s (attempt 2)" in lines[1]
