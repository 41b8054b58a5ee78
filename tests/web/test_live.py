"""Live updates (server-sent events from a real server) and world reads kept off the
event loop."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.web import web_helpers
from tests.web.browser import serve_inspector
from tests.web.inspector_client import get, run_async, suspend, work_until_done
from wfkit.runtime.api.client import resume_hook_sync
from wfkit.runtime.tools.web import create_web_app
from wfkit.worlds.base import Run, World


def live_url(markup: str) -> str:
    found = re.search(r'data-live="([^"]+)"', markup)
    assert found, "the page has no live-update URL"
    return html.unescape(found.group(1))


def read_events(lines: Iterator[str], until: str, timeout: float = 10) -> list[str]:
    """Event names of a stream's ``lines`` up to and including ``until``."""
    names: list[str] = []
    deadline = time.monotonic() + timeout
    for line in lines:
        if line.startswith("event: "):
            names.append(line.removeprefix("event: "))
            if names[-1] == until:
                return names
        assert time.monotonic() < deadline, f"no {until!r} event within {timeout} s: {names}"
    return names


def test_run_page_stream_says_change_then_end(world: World) -> None:
    run_id = suspend(world, web_helpers.awaiting_anything, "live:1")
    url = live_url(get(world, f"/runs/{run_id}").text)
    assert url.startswith(f"/runs/{run_id}/live?since=")
    with serve_inspector(world) as base:
        # Nothing changed since the page was drawn: the stream stays quiet.
        with (
            pytest.raises(httpx.ReadTimeout),
            httpx.stream("GET", base + url, timeout=1.5) as quiet,
        ):
            read_events(quiet.iter_lines(), until="change")
        # A change made before the page connects is not missed.
        resume_hook_sync("live:1", {"go": True}, world=world)
        with httpx.stream("GET", base + url, timeout=10) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            assert read_events(lines, until="change") == ["change"]
            work_until_done(world, run_id)
            assert read_events(lines, until="end") in (["end"], ["change", "end"])
    assert world.runs.get(run_id).status == "completed"


def test_runs_list_stream_reports_a_new_run(world: World) -> None:
    url = live_url(get(world, "/").text)
    with serve_inspector(world) as base, httpx.stream("GET", base + url, timeout=10) as response:
        suspend(world, web_helpers.napping, 3600)
        assert read_events(response.iter_lines(), until="change") == ["change"]


class _SlowRuns:
    """A runs table that answers ``list`` slowly, as a loaded database would."""

    def __init__(self, inner: Any, delay: float) -> None:
        self._inner, self._delay = inner, delay

    def get(self, run_id: str) -> Run:
        return self._inner.get(run_id)  # type: ignore[no-any-return]

    def list(self, **kwargs: Any) -> list[Run]:
        time.sleep(self._delay)  # blocking, like a database driver
        return self._inner.list(**kwargs)  # type: ignore[no-any-return]


class _SlowWorld:
    def __init__(self, inner: World, delay: float) -> None:
        self.name = inner.name
        self.events, self.steps, self.hooks = inner.events, inner.steps, inner.hooks
        self.waits, self.queue, self.streams = inner.waits, inner.queue, inner.streams
        self.runs = _SlowRuns(inner.runs, delay)
        self._inner = inner

    def close(self) -> None:
        self._inner.close()


def test_a_slow_world_read_does_not_stall_other_requests(world: World) -> None:
    app = create_web_app(_SlowWorld(world, delay=0.8))  # type: ignore[arg-type]

    async def finished_at(client: httpx.AsyncClient, path: str) -> float:
        response = await client.get(path)
        assert response.status_code == 200
        return time.monotonic()

    async def both() -> tuple[float, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            began = time.monotonic()
            slow = asyncio.create_task(finished_at(client, "/"))
            await asyncio.sleep(0.1)  # the slow read is under way
            quick = await finished_at(client, "/assets/inspector.css")
            # Both measured from the start: a read blocking the loop delays the quick
            # request (and the sleep before it) until the read is over.
            return await slow - began, quick - began

    slow, quick = run_async(both())
    assert slow >= 0.8
    assert quick < 0.5, f"a 0.8 s world read held up an unrelated request: {quick:.2f} s"
