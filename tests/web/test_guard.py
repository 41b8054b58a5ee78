"""The inspector's guard (issue 10, item 4): a CSRF token on every mutating request besides
the origin check, only the served host names, CSP and frame-ancestors on every answer,
and an access token (required off loopback) on every request."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web import web_helpers
from tests.web.inspector_client import BASE_URL, CSRF_TOKEN, get, request, run_async, suspend
from wfkit.runtime.tools.web import create_web_app
from wfkit.runtime.tools.web.security import binding_problem
from wfkit.worlds.base import World

ROOT = Path(__file__).resolve().parents[2]
SAME_ORIGIN = {"origin": BASE_URL, "sec-fetch-site": "same-origin"}


def _call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            return await client.request(method, path, **kwargs)

    return run_async(go())


def test_a_same_origin_post_without_the_csrf_token_changes_nothing(world: World) -> None:
    run_id = suspend(world, web_helpers.napping, 3600)
    hook_run = suspend(world, web_helpers.awaiting_anything, "csrf:1")
    (hook,) = world.hooks.list(run_id=hook_run)
    resume = f"/runs/{hook_run}/hooks/{hook.hook_id}/resume"
    attempts: list[tuple[str, dict[str, Any]]] = [
        (f"/runs/{run_id}/cancel", {}),
        (f"/api/runs/{run_id}/cancel", {}),
        (f"/runs/{run_id}/cancel", {"headers": {"x-wfkit-csrf": "guessed"}}),
        (f"/runs/{run_id}/cancel", {"data": {"csrf_token": "guessed"}}),
        (resume, {"data": {"payload": "1"}}),
        (f"/api/runs/{hook_run}/hooks/{hook.hook_id}/resume", {"content": b"1"}),
    ]
    for path, options in attempts:
        headers = {**SAME_ORIGIN, **options.pop("headers", {})}
        answer = request(world, "POST", path, csrf=False, headers=headers, **options)
        assert answer.status_code == 403, (path, options)
        assert "CSRF token" in answer.text
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert world.runs.get(run_id).status == "running"
    assert world.hooks.get(hook.hook_id).status == "active"


def test_the_token_in_the_page_cancels_and_the_api_hands_it_to_scripts(world: World) -> None:
    run_id = suspend(world, web_helpers.napping, 3600)
    page = get(world, f"/runs/{run_id}").text
    meta = re.search(r'<meta name="wfkit-csrf" content="([^"]+)">', page)
    hidden = re.search(r'<input type="hidden" name="csrf_token" value="([^"]+)">', page)
    assert meta and hidden and meta.group(1) == hidden.group(1) == CSRF_TOKEN
    assert get(world, "/api/csrf").json() == {"csrf_token": CSRF_TOKEN}
    answer = request(
        world,
        "POST",
        f"/api/runs/{run_id}/cancel",
        csrf=False,
        headers={**SAME_ORIGIN, "x-wfkit-csrf": meta.group(1)},
    )
    assert answer.json() == {"run_id": run_id, "cancelled": True}


def test_each_server_has_its_own_csrf_token(world: World) -> None:
    first = _call(create_web_app(world), "GET", "/api/csrf").json()["csrf_token"]
    second = _call(create_web_app(world), "GET", "/api/csrf").json()["csrf_token"]
    assert first != second and len(first) >= 32


def test_other_host_names_are_refused_even_for_reads(world: World) -> None:
    for path in ("/api/runs", "/", "/api/csrf"):
        rebound = request(world, "GET", path, headers={"host": "evil.example"})
        assert rebound.status_code == 400, path
        assert "csrf" not in rebound.text
    app = create_web_app(world, allowed_hosts=("inspector.internal",))
    allowed = _call(app, "GET", "/api/runs", headers={"host": "inspector.internal:3456"})
    assert allowed.status_code == 200


def test_every_answer_forbids_framing_and_foreign_scripts(world: World) -> None:
    for path in ("/", "/api/runs", "/assets/inspector.js", "/runs/wrun_NOPE"):
        headers = get(world, path).headers
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, path
        assert headers["x-frame-options"] == "DENY"


def test_an_access_token_guards_every_request(world: World) -> None:
    app = create_web_app(world, access_token="s3cret-token", csrf_token=CSRF_TOKEN)
    for path in ("/", "/api/runs", "/assets/inspector.js", "/api/csrf"):
        refused = _call(app, "GET", path)
        assert refused.status_code == 401, path
        assert "access token" in refused.text
    assert _call(app, "GET", "/?token=wrong").status_code == 401
    bearer = {"authorization": "Bearer s3cret-token"}
    assert _call(app, "GET", "/api/runs", headers=bearer).status_code == 200

    login = _call(app, "GET", "/?status=running&token=s3cret-token")
    assert login.status_code == 303
    assert login.headers["location"] == "/?status=running"  # the token leaves the URL
    cookie = login.headers["set-cookie"]
    assert "wfkit_web_access=s3cret-token" in cookie
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    with_cookie = {"cookie": "wfkit_web_access=s3cret-token"}
    assert _call(app, "GET", "/", headers=with_cookie).status_code == 200

    run_id = suspend(world, web_helpers.napping, 3600)
    cancel = f"/api/runs/{run_id}/cancel"
    no_csrf = _call(app, "POST", cancel, headers={**bearer, **SAME_ORIGIN})
    assert no_csrf.status_code == 403  # the access token does not replace the CSRF token
    done = _call(app, "POST", cancel, headers={**bearer, "x-wfkit-csrf": CSRF_TOKEN})
    assert done.json()["cancelled"] is True


def test_binding_off_loopback_needs_an_access_token() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert binding_problem(host, None) is None, host
    for host in ("0.0.0.0", "192.168.1.10", "::", "inspector.internal"):
        problem = binding_problem(host, None)
        assert problem is not None and "access token" in problem, host
        assert binding_problem(host, "t0ken") is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wfkit_web(tmp_path: Path, *args: str, token: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "WFKIT_WORLD": f"sqlite:///{tmp_path / 'wfkit.db'}"}
    env.pop("WFKIT_WEB_TOKEN", None)
    if token is not None:
        env["WFKIT_WEB_TOKEN"] = token
    return subprocess.Popen(
        [sys.executable, "-m", "wfkit", "web", "--no-browser", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_wfkit_web_refuses_to_bind_everywhere_without_a_token(tmp_path: Path) -> None:
    process = _wfkit_web(tmp_path, "--host", "0.0.0.0", "--port", str(_free_port()))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert stderr.strip().count("\n") == 0, stderr
    assert "access token" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("given", ["flag", "env"])
def test_wfkit_web_with_a_token_serves_only_requests_that_carry_it(
    tmp_path: Path, given: str
) -> None:
    port = _free_port()
    args = ["--host", "0.0.0.0", "--port", str(port)]
    if given == "flag":
        args += ["--access-token", "cli-token"]
    process = _wfkit_web(tmp_path, *args, token="cli-token" if given == "env" else None)
    try:
        url = f"http://127.0.0.1:{port}/api/runs"
        deadline = time.monotonic() + 60
        while True:
            try:
                refused = httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "wfkit web did not come up"
                time.sleep(0.1)
        assert refused.status_code == 401
        allowed = httpx.get(url, headers={"authorization": "Bearer cli-token"}, timeout=5)
        assert allowed.status_code == 200 and allowed.json() == []
    finally:
        process.terminate()
        process.communicate(timeout=30)
