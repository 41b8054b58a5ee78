"""``wfkit web``: real runs on the memory and local worlds, pages read as a user would."""

from __future__ import annotations

import asyncio
import html
import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web import web_helpers
from wfkit.runtime.api.client import start
from wfkit.runtime.engine.worker import Worker
from wfkit.runtime.tools.web import create_web_app
from wfkit.worlds.base import World


@pytest.fixture(autouse=True)
def helpers() -> Iterator[Any]:
    """(Re-)register the helper workflows: other tests may clear the registry."""
    yield importlib.reload(web_helpers)


@pytest.fixture(params=["memory", "local"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    instance: World
    if request.param == "memory":
        from wfkit.worlds.memory import MemoryWorld

        instance = MemoryWorld()
    else:
        from wfkit.worlds.local import LocalWorld

        instance = LocalWorld.from_spec(f"sqlite:///{tmp_path / 'wfkit.db'}")
    yield instance
    instance.close()


def _run(coro: Any, timeout: float = 30) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def _finish(world: World, workflow_id: str, *args: Any) -> str:
    run = await start(workflow_id, *args, world=world)
    await Worker(world=world, poll_interval=0.01).run_until_complete(run.run_id, timeout=20)
    return run.run_id


def finish(world: World, workflow_id: str, *args: Any) -> str:
    """Start a run and work until it ends; its id."""
    return str(_run(_finish(world, workflow_id, *args)))


def request(world: World, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request to the inspector app over ASGI."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_web_app(world))
        async with httpx.AsyncClient(transport=transport, base_url="http://wfkit") as client:
            return await client.request(method, path, **kwargs)

    return _run(go())  # type: ignore[no-any-return]


def get(world: World, path: str) -> httpx.Response:
    return request(world, "GET", path)


def text_of(markup: str) -> str:
    """What a reader sees: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def runs_rows(markup: str) -> list[str]:
    """The visible text of each row of the runs table."""
    body = markup.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in markup else ""
    return [text_of(row) for row in body.split("</tr>") if row.strip()]


def section(markup: str, anchor: str) -> str:
    """The markup from ``<h2 id=anchor>`` to the next ``<h2``."""
    start = markup.index(f'<h2 id="{anchor}">')
    end = markup.find("<h2", start + 1)
    return markup[start : end if end != -1 else len(markup)]


def test_runs_list_shows_each_run_with_status_and_links(world: World) -> None:
    ok = finish(world, web_helpers.checkout, "o-7")
    bad = finish(world, web_helpers.declined, "insufficient funds")
    page = get(world, "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    rows = runs_rows(page.text)
    assert len(rows) == 2
    assert rows[0].startswith(f"declined {bad} failed")  # newest first
    assert rows[1].startswith(f"checkout {ok} completed")
    assert f'href="/runs/{ok}"' in page.text
    assert '<span class="badge s-failed">failed</span>' in page.text
    assert 'http-equiv="refresh"' not in page.text  # nothing is running


def test_filters_by_status_and_workflow(world: World) -> None:
    ok = finish(world, web_helpers.checkout, "o-1")
    bad = finish(world, web_helpers.declined, "nope")
    failed = runs_rows(get(world, "/?status=failed").text)
    assert [r.split()[1] for r in failed] == [bad]
    by_short = runs_rows(get(world, "/?workflow=checkout").text)
    assert [r.split()[1] for r in by_short] == [ok]
    by_id = runs_rows(get(world, f"/?workflow={web_helpers.checkout}").text)
    assert [r.split()[1] for r in by_id] == [ok]
    assert "No runs." in get(world, "/?status=cancelled").text
    assert get(world, "/?status=bogus").status_code == 400
    api = get(world, "/api/runs?status=completed").json()
    assert [r["run_id"] for r in api] == [ok]
    assert api[0] == world.runs.get(ok).model_dump(mode="json")


def test_run_page_timeline_and_event_log(world: World) -> None:
    run_id = finish(world, web_helpers.checkout, "o-9")
    page = get(world, f"/runs/{run_id}")
    assert page.status_code == 200
    seen = text_of(page.text)
    assert f"Run {run_id}" in seen
    assert "status completed" in seen
    assert '"CHARGED 42"' in text_of(page.text.split("<h2>Output</h2>", 1)[1])
    steps = section(page.text, "steps")
    names = re.findall(r'<span title="step//[^"]+">([^<]+)</span>', steps)
    assert names == ["fetch_order", "charge_card", "send_receipt"]
    assert (
        len(re.findall(r'class="bar s-completed" style="left:[\d.]+%;width:[\d.]+%"', steps)) == 3
    )
    events = section(page.text, "events")
    types = re.findall(r'<span class="mono event-type">([a-z_]+)</span>', events)
    assert types == [e.event_type for e in world.events.list(run_id)]
    assert types[0] == "run_created" and types[-1] == "run_completed"
    assert events.count("<details><summary>data</summary>") == sum(
        1 for e in world.events.list(run_id) if e.data
    )
    assert "Cancel run" not in page.text and 'http-equiv="refresh"' not in page.text
    api = get(world, f"/api/runs/{run_id}").json()
    assert api["run"] == world.runs.get(run_id).model_dump(mode="json")
    assert [s["step_name"].rsplit("//", 1)[-1] for s in api["steps"]] == names
    assert [e["event_type"] for e in api["events"]] == types


def test_failed_run_shows_error_and_traceback(world: World) -> None:
    run_id = finish(world, web_helpers.declined, "expired")
    page = get(world, f"/runs/{run_id}")
    error = page.text.split("<h2>Error</h2>", 1)[1]
    assert "card declined: expired" in text_of(error)
    assert "FatalError" in text_of(error)
    assert "<summary>traceback</summary>" in error
    assert "Traceback" in text_of(error) and "_decline" in text_of(error)
    steps = section(page.text, "steps")
    assert '<span class="badge s-failed">failed</span>' in steps
    assert "card declined: expired" in text_of(steps)


def test_user_data_is_escaped(world: World) -> None:
    evil = "<script>alert(1)</script>"
    run_id = finish(world, web_helpers.checkout, evil)
    for path in ("/", f"/runs/{run_id}"):
        page = get(world, path).text
        assert "<script>" not in page
    page = get(world, f"/runs/{run_id}").text
    assert "&lt;script&gt;alert(" in page
    assert evil in text_of(page)
    assert "<script" not in get(world, "/?workflow=" + evil).text


def test_unknown_run_is_a_404(world: World) -> None:
    for path in ("/runs/wrun_NOPE", "/runs/wrun_NOPE/streams/x", "/api/runs/wrun_NOPE"):
        assert get(world, path).status_code == 404
    assert "Run not found" in get(world, "/runs/wrun_NOPE").text
    assert request(world, "POST", "/runs/wrun_NOPE/cancel").status_code == 404


def test_cancel_button_cancels_a_waiting_run(world: World) -> None:
    async def suspend() -> str:
        run = await start(web_helpers.napping, 3600, world=world)
        await Worker(world=world, poll_interval=0.01).drain(timeout=10)
        return run.run_id

    run_id = _run(suspend())
    assert world.runs.get(run_id).status == "running"
    page = get(world, f"/runs/{run_id}")
    assert 'http-equiv="refresh"' in page.text
    assert f'<form method="post" action="/runs/{run_id}/cancel">' in page.text
    assert '<span class="badge s-waiting">waiting</span>' in section(page.text, "waits")
    assert 'http-equiv="refresh"' in get(world, "/").text
    answer = request(world, "POST", f"/runs/{run_id}/cancel")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/runs/{run_id}"
    assert world.runs.get(run_id).status == "cancelled"
    page = get(world, f"/runs/{run_id}")
    assert "status cancelled" in text_of(page.text)
    assert "Cancel run" not in page.text
    assert "run_cancelled" in section(page.text, "events")


def test_stream_page_shows_decoded_chunks(world: World) -> None:
    from wfkit.runtime.api.streams import stream_name

    run_id = finish(world, web_helpers.streaming)
    page = get(world, f"/runs/{run_id}").text
    default, logs = stream_name(run_id), stream_name(run_id, "logs")
    assert sorted(world.streams.list(run_id)) == sorted([default, logs])
    listed = text_of(section(page, "streams"))
    assert f"default {default}" in listed and f"logs {logs}" in listed
    link = f"/runs/{run_id}/streams/{default}"
    assert f'href="{link}"' in page
    stream = get(world, link)
    assert stream.status_code == 200
    seen = text_of(stream.text)
    assert "Stream default" in seen
    assert "closed · 2 chunk(s)" in seen
    assert repr(b"raw\x00bytes") in seen
    assert '"n": 1' in seen and '"tag": "<b>bold</b>"' in seen
    assert "<b>bold</b>" not in stream.text
    named = text_of(get(world, f"/runs/{run_id}/streams/{logs}").text)
    assert "Stream logs" in named and "open · 1 chunk(s)" in named and '"left open"' in named
    assert get(world, f"/runs/{run_id}/streams/strm_other").status_code == 404


def test_cli_has_a_web_command() -> None:
    from wfkit.cli import build_parser

    args = build_parser().parse_args(["web", "--no-browser", "--port", "4000"])
    assert (args.host, args.port, args.no_browser) == ("127.0.0.1", 4000, True)
    assert args.func.__name__ == "cmd_web"
