"""``wfkit serve`` against a real running server: the token is checked before the body is
read, bodies are capped, headers are bounded, and a normal payload still gets through."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from wfkit.worlds.base import World

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 4096
WEBHOOKS = "workflow//./examples/e2e/surface//webhooks"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class Served:
    """A ``wfkit serve --worker`` process on a SQLite world of its own."""

    def __init__(self, tmp: Path) -> None:
        import wfbuild

        build = tmp / "build"
        wfbuild.build([ROOT / "examples"], root=ROOT, out=build)
        self.db = tmp / "wfkit.db"
        self.port = _free_port()
        self.env = {
            **os.environ,
            "WFKIT_BUILD_DIR": str(build),
            "WFKIT_WORLD": f"sqlite:///{self.db}",
            "WFKIT_BASE_URL": f"http://127.0.0.1:{self.port}",
        }
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "wfkit", "serve", "--worker"),
                *("--port", str(self.port), "--max-body-bytes", str(LIMIT)),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}/.well-known/workflow/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, "wfkit serve exited"
            assert time.monotonic() < deadline, "wfkit serve did not come up"
            time.sleep(0.1)

    def wfkit(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "wfkit", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def world(self) -> World:
        from wfkit.worlds.local import LocalWorld

        return LocalWorld.from_spec(f"sqlite:///{self.db}")

    def raw(self, head: str, body: bytes = b"") -> socket.socket:
        """A connection that has sent ``head`` (request line and headers) and ``body``."""
        conn = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            conn.sendall(head.encode("latin-1") + b"\r\n" + body)
        except OSError:
            conn.close()
            raise
        return conn

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("serve"))
    try:
        yield server
    finally:
        server.stop()


def _answer(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    return received


def _head(path: str, *headers: str, method: str = "POST") -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    return "".join(line + "\r\n" for line in lines)


def test_an_unknown_token_is_refused_before_its_body_is_read(served: Served) -> None:
    path = "/.well-known/workflow/v1/webhook/no-such-token"
    started = time.monotonic()
    with served.raw(_head(path, f"Content-Length: {200 * 1024 * 1024}"), b"only a few") as conn:
        answer = _answer(conn)  # the server answers and closes without waiting for the body
    assert answer.startswith(b"HTTP/1.1 404 ")
    assert time.monotonic() - started < 3


def test_a_200_mb_body_to_an_unknown_token_does_not_grow_the_server(served: Served) -> None:
    path = "/.well-known/workflow/v1/webhook/no-such-token"
    total = 200 * 1024 * 1024
    before = _rss_kib(served.process.pid)
    sent = 0
    chunk = b"x" * (1024 * 1024)
    with served.raw(_head(path, f"Content-Length: {total}")) as conn:
        try:
            while sent < total:
                conn.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server closed the connection: what we want
            pass
    after = _rss_kib(served.process.pid)
    assert sent < total / 4, f"the server took {sent} bytes of a body it refused"
    assert after - before < 20 * 1024, f"RSS grew from {before} to {after} KiB"


def test_an_oversized_body_gets_413_and_the_run_consumes_nothing(served: Served) -> None:
    run_id = served.wfkit("start", WEBHOOKS).strip()
    world = served.world()
    try:
        deadline = time.monotonic() + 30
        while len(world.hooks.list(run_id=run_id)) < 3:
            assert time.monotonic() < deadline, "the run created no webhooks"
            time.sleep(0.1)
        hook = next(h for h in world.hooks.list(run_id=run_id) if h.respond_with is None)
        url = f"{served.base}/webhook/{hook.token}"

        declared = httpx.post(url, content=b"y" * (LIMIT + 1), timeout=10)
        assert declared.status_code == 413
        assert "larger than 4096 bytes" in declared.text

        def chunked() -> Iterator[bytes]:  # no Content-Length: the cap counts what arrives
            for _ in range(10):
                yield b"z" * 1024

        streamed = httpx.post(url, content=chunked(), timeout=10)
        assert streamed.status_code == 413
        types = [e.event_type for e in world.events.list(run_id)]
        assert "hook_received" not in types
        assert world.hooks.get(hook.hook_id).status == "active"

        normal = httpx.post(url, content=b'{"ok": true}', timeout=10)
        assert normal.status_code == 202
        received = [e for e in world.events.list(run_id) if e.event_type == "hook_received"]
        assert len(received) == 1
    finally:
        world.close()


@pytest.mark.parametrize(("padding", "status"), [(64 * 1024, 431), (4 * 1024 * 1024, 400)])
def test_headers_over_the_bound_are_refused(served: Served, padding: int, status: int) -> None:
    """Whole in one read: our own check (431); larger: h11 stops buffering it (400)."""
    path = "/.well-known/workflow/v1/health"
    huge = "X-Padding: " + "p" * padding
    started = time.monotonic()
    try:
        with served.raw(_head(path, huge, method="GET")) as conn:
            answer = _answer(conn)
    except ConnectionResetError:  # refused while we were still sending
        answer = b"HTTP/1.1 400 (reset)"
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert time.monotonic() - started < 3  # closed at once, not after the keep-alive time


def test_serve_help_documents_the_body_limit() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "wfkit", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "--max-body-bytes" in " ".join(shown.split())
    assert "default 1048576" in " ".join(shown.split())


def test_a_request_head_trickling_in_is_cut_off() -> None:
    """One header byte a second would hold a connection forever under uvicorn's own
    keep-alive timer (it restarts on every byte); the head deadline closes it."""
    import threading

    import uvicorn

    from wfkit.runtime.tools.http import create_app
    from wfkit.runtime.tools.http_server import uvicorn_config
    from wfkit.worlds.memory import MemoryWorld

    port = _free_port()
    app = create_app(MemoryWorld())
    config = uvicorn_config(app, host="127.0.0.1", port=port, log_level="warning", head_seconds=1.5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"GET /.well-known/workflow/v1/health HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            closed_after = None
            for byte in b"X-Slow: " + b"s" * 20:
                time.sleep(0.5)
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    closed_after = time.monotonic() - started
                    break
            if closed_after is None:
                conn.settimeout(5)
                try:
                    assert conn.recv(1024) == b""
                except ConnectionResetError:
                    pass
                closed_after = time.monotonic() - started
        assert closed_after < 5, f"the trickling connection stayed open {closed_after:.1f} s"
        # A whole request on a fresh connection is still served.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(_head("/.well-known/workflow/v1/health", method="GET").encode() + b"\r\n")
            assert conn.recv(1024).startswith(b"HTTP/1.1 200 ")
    finally:
        server.should_exit = True
        thread.join(timeout=30)
