"""How wfkit's HTTP servers (``wfkit serve``, ``wfkit web``) run: uvicorn with bounded input.

uvicorn is run on its pure-Python h11 protocol, whatever else is installed, because h11
bounds what it buffers of an incomplete request head (``MAX_HEADER_BYTES``; more is a 400
and a closed connection); httptools buffers headers without a limit. h11 only counts a
head that has not fully arrived, so one that arrives whole in a single read (up to one
socket read, 256 KiB) is bounded again by :class:`HeaderLimit` (431). An idle keep-alive
connection is closed after ``KEEP_ALIVE_SECONDS``. Request bodies are bounded
by the apps themselves (``wfkit.runtime.tools.http``), which know whether a body is
wanted before reading it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp, Receive, Scope, Send

MAX_HEADER_BYTES = 16 * 1024
"""The most of one request line plus headers the server buffers."""
KEEP_ALIVE_SECONDS = 5
"""How long an idle keep-alive connection stays open."""
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""The largest webhook request body ``wfkit serve`` accepts by default (1 MiB)."""


def uvicorn_config(app: Any, *, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    """A ``uvicorn.Config`` serving ``app`` on ``host:port`` with the bounds above."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http="h11",
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


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
