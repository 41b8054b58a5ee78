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
from tests.web.inspector_client import get, run_async, suspend, text_of, work_until_done
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


class _EndsWhileReading:
    """An event log whose first ``list`` lets the run end first: the run page has read the
    run's record ("running") and reads its log just after the run completed (a worker
    wrote between the page's two reads)."""

    def __init__(self, inner: Any, end_run: Any) -> None:
        self._inner, self._end_run = inner, end_run

    def list(self, run_id: str, **kwargs: Any) -> Any:
        if self._end_run is not None:
            end, self._end_run = self._end_run, None
            end()
        return self._inner.list(run_id, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_run_ending_while_its_page_is_read_still_reaches_the_page(world: World) -> None:
    run_id = suspend(world, web_helpers.awaiting_anything, "live:race")

    def end_run() -> None:
        resume_hook_sync("live:race", {"go": True}, world=world)
        work_until_done(world, run_id)

    racing = _SlowWorld(world, delay=0)
    racing.events = _EndsWhileReading(world.events, end_run)
    markup = get(racing, f"/runs/{run_id}").text  # type: ignore[arg-type]
    assert world.runs.get(run_id).status == "completed"
    assert "running" in text_of(markup)  # the record it read first: the page is stale...
    # ...so it must follow the run: a live URL whose stream says change (then end), and
    # the page it then reloads shows the run completed.
    url = live_url(markup)
    with serve_inspector(world) as base, httpx.stream("GET", base + url, timeout=10) as response:
        assert read_events(response.iter_lines(), until="end") == ["change", "end"]
    assert "completed" in text_of(get(world, f"/runs/{run_id}").text)


class _GrowsAfterReading:
    """A stream store that, once the stream page has read every chunk so far (an empty
    page), lets the step append one more and close the stream before the page is sent."""

    def __init__(self, inner: Any, run_id: str, name: str) -> None:
        self._inner, self._run_id, self._name = inner, run_id, name
        self._grown = False

    def read(self, run_id: str, name: str, **kwargs: Any) -> Any:
        page = self._inner.read(run_id, name, **kwargs)
        if not page.chunks and not page.closed and not self._grown:
            self._grown = True
            self._inner.append(self._run_id, self._name, b'"last"')
            self._inner.close(self._run_id, self._name)
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_stream_closing_while_its_page_is_read_still_reaches_the_page(world: World) -> None:
    run_id = suspend(world, web_helpers.awaiting_anything, "live:stream")
    world.streams.append(run_id, "out", b'"first"')
    racing = _SlowWorld(world, delay=0)
    racing.streams = _GrowsAfterReading(world.streams, run_id, "out")
    markup = get(racing, f"/runs/{run_id}/streams/out").text  # type: ignore[arg-type]
    assert "first" in markup and "last" not in markup  # drawn before the stream grew...
    url = live_url(markup)  # ...so it must follow it
    with serve_inspector(world) as base, httpx.stream("GET", base + url, timeout=10) as response:
        assert read_events(response.iter_lines(), until="end") == ["change", "end"]
    assert "last" in get(world, f"/runs/{run_id}/streams/out").text
