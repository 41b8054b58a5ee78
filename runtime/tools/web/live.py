"""Live updates as server-sent events: ``change`` when what a page shows changed, ``end``
when it never will again.

Each connection polls one small state read (``queries.run_state`` and friends) in a
worker thread every ``interval`` seconds and compares tokens, so an idle page costs the
world one cheap read per interval and nothing crosses the wire until something changed.
The page passes the token it was rendered from (``?since=``), so a change that happened
between rendering and connecting is not missed; each ``change`` carries the new token as
its event id, which the browser sends back (``Last-Event-ID``) when it reconnects.
A connection lasts at most ``LIVE_SECONDS`` (the browser reconnects on its own, from the
token it last saw): uvicorn waits for open responses before it exits, so a server shut
down while a page is open waits at most that long.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import StreamingResponse

from wfkit.runtime.tools.web.queries import LiveState
from wfkit.worlds.base import RunNotFoundError

POLL_SECONDS = 0.5
LIST_POLL_SECONDS = 1.0
"""The runs list polls less often: its read is a list, not a look at one run's tail."""
LIVE_SECONDS = 10.0
KEEPALIVE_SECONDS = 5.0
RECONNECT_MS = 500


async def live_events(
    read_state: Callable[[str], LiveState], since: str, *, interval: float = POLL_SECONDS
) -> AsyncIterator[str]:
    """The event stream: ``change`` each time ``read_state(last token)``'s token differs
    from the last one sent (starting from ``since``), then ``end`` once the state is final."""
    yield f"retry: {RECONNECT_MS}\n\n"
    last = since
    started = last_sent = time.monotonic()
    while time.monotonic() - started < LIVE_SECONDS:
        try:
            state = await anyio.to_thread.run_sync(read_state, last)
        except RunNotFoundError:
            yield "event: end\ndata: {}\n\n"
            return
        if state.token != last:
            last = state.token
            last_sent = time.monotonic()
            yield f"event: change\nid: {last}\ndata: {{}}\n\n"
        if state.final:
            yield "event: end\ndata: {}\n\n"
            return
        if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        await anyio.sleep(interval)


def live_response(
    request: Request, read_state: Callable[[str], LiveState], *, interval: float = POLL_SECONDS
) -> StreamingResponse:
    """A ``text/event-stream`` response for one page, resuming from the token the browser
    last saw."""
    since = request.headers.get("last-event-id") or request.query_params.get("since") or ""
    return StreamingResponse(
        live_events(read_state, since, interval=interval),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
