"""How wfkit's HTTP servers (``wfkit serve``, ``wfkit web``) run: uvicorn with bounded input.

uvicorn is run on its pure-Python h11 protocol, whatever else is installed, because h11
bounds what it buffers of an incomplete request head (``MAX_HEADER_BYTES``; more is a 400
and a closed connection); httptools buffers headers without a limit. h11 only counts a
head that has not fully arrived, so one that arrives whole in a single read (up to one
socket read, 256 KiB) is bounded again by :class:`HeaderLimit` (431). An idle keep-alive
connection is closed after ``KEEP_ALIVE_SECONDS``, and a request head that has not fully
arrived ``HEAD_SECONDS`` after the connection opened (or after the previous response)
closes the connection: uvicorn's own keep-alive timer restarts on every byte, so a
client sending one header byte at a time would otherwise hold a connection forever. Request bodies are bounded
by the apps themselves (``wfkit.runtime.tools.http``), which know whether a body is
wanted before reading it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp, Receive, Scope, Send

MAX_HEADER_BYTES = 16 * 1024
"""The most of one request line plus headers the server buffers."""
KEEP_ALIVE_SECONDS = 5
"""How long an idle keep-alive connection stays open."""
HEAD_SECONDS = 10.0
"""How long a request line and headers may take to arrive."""
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""The largest webhook request body ``wfkit serve`` accepts by default (1 MiB)."""


def uvicorn_config(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    head_seconds: float = HEAD_SECONDS,
) -> uvicorn.Config:
    """A ``uvicorn.Config`` serving ``app`` on ``host:port`` with the bounds above
    (``head_seconds``: how long a request head may take to arrive)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=_head_deadline_protocol(head_seconds),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


def _head_deadline_protocol(head_seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request head is still
    incomplete ``head_seconds`` after it opened or after its last response."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadDeadlineProtocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._arm_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(head_seconds, self._head_overdue)

        def _head_overdue(self) -> None:
            # IDLE: no complete request line and headers since the timer was armed.
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return HeadDeadlineProtocol


class HeaderLimit:
    """ASGI middleware answering 431 (and closing) to a request whose line and headers
    add up to more than ``MAX_HEADER_BYTES``."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
            size += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.max_bytes:
                text = f"request headers larger than {self.max_bytes} bytes".encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 431,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(text)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": text})
                return
        await self.app(scope, receive, send)
