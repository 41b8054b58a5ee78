"""The HTTP side of wfkit: an ASGI app (Starlette) users mount or run with ``wfkit serve``.

Routes: ``/.well-known/workflow/v1/webhook/{token}`` (any method) resumes a webhook,
``/.well-known/workflow/v1/health`` answers 200, ``/.well-known/workflow/v1/manifest.json``
serves the loaded build's manifest. Needs the ``web`` extra (starlette, uvicorn).

A webhook request is checked before its body is read: an unknown token (or a plain
hook's) is a 404, and a body larger than ``max_body_bytes`` (declared or streamed) a
413; neither reads the rest of the body, and both close the connection, so the server
never buffers or even receives what it refused. A body that stalls for
``body_idle_seconds`` is a 408.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.responses import Response as HttpResponse
from starlette.routing import Route

from wfkit.runtime.api.hook_client import hook_not_found, live_hook
from wfkit.runtime.api.webhooks import WEBHOOK_PATH, Request, resume_webhook
from wfkit.runtime.tools.http_server import DEFAULT_MAX_BODY_BYTES, HeaderLimit
from wfkit.runtime.world_config import resolve_world
from wfkit.worlds.base import HookNotFoundError, World

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

DEFAULT_BODY_IDLE_SECONDS = 30.0
"""How long a webhook request body may stall between two chunks by default."""
_CLOSE = {"connection": "close"}


class _BodyRefused(Exception):
    """A webhook body that is not read to its end: too large, or stalled."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


async def _read_body(http: HttpRequest, max_bytes: int, idle_seconds: float) -> bytes:
    """The request body, refused as soon as it is known to be larger than ``max_bytes``.

    Raises:
        _BodyRefused: larger than ``max_bytes`` (413) or stalled (408).
    """
    declared = http.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _BodyRefused(413, f"request body larger than {max_bytes} bytes")
    body = bytearray()
    chunks = http.stream().__aiter__()
    while True:
        with anyio.move_on_after(idle_seconds) as idle:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return bytes(body)
        if idle.cancelled_caught:
            raise _BodyRefused(408, f"request body stalled for {idle_seconds:g} s")
        body += chunk
        if len(body) > max_bytes:
            raise _BodyRefused(413, f"request body larger than {max_bytes} bytes")


def create_app(
    world: World | str | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_idle_seconds: float = DEFAULT_BODY_IDLE_SECONDS,
) -> Starlette:
    """An ASGI app serving webhooks, health and the manifest for ``world``.

    Args:
        world: a World, a world spec, or None for the default world.
        max_body_bytes: the largest webhook request body accepted (larger: 413).
        body_idle_seconds: how long a webhook body may stall between chunks (then 408).

    Raises:
        ValueError: ``max_body_bytes`` is negative or ``body_idle_seconds`` not positive.
    """
    if max_body_bytes < 0:
        raise ValueError(f"max_body_bytes must be 0 or more, not {max_body_bytes}")
    if body_idle_seconds <= 0:
        raise ValueError(f"body_idle_seconds must be positive, not {body_idle_seconds}")
    target = resolve_world(world)

    def missing_webhook(token: str) -> HookNotFoundError | None:
        """Why no webhook takes ``token`` (worded as every "no such hook" is); None when
        a live webhook holds it."""
        try:
            hook = live_hook(target, token)
        except HookNotFoundError as missing:
            return missing
        return None if hook.is_webhook else hook_not_found(token, "webhook")

    async def webhook(http: HttpRequest) -> HttpResponse:
        token = http.path_params["token"]
        # The token first: nobody gets to send a body to a webhook that does not exist.
        missing = await anyio.to_thread.run_sync(missing_webhook, token)
        if missing is not None:
            return PlainTextResponse(str(missing), status_code=404, headers=_CLOSE)
        try:
            body = await _read_body(http, max_body_bytes, body_idle_seconds)
        except _BodyRefused as refused:
            return PlainTextResponse(str(refused), status_code=refused.status, headers=_CLOSE)
        except ClientDisconnect:
            return HttpResponse(status_code=400, headers=_CLOSE)
        request = Request(
            method=http.method,
            url=str(http.url),
            headers={k.lower(): v for k, v in http.headers.items()},
            body=body,
        )
        try:
            answer = await resume_webhook(token, request, world=target)
        except HookNotFoundError as exc:
            return PlainTextResponse(str(exc), status_code=404)
        return HttpResponse(
            content=answer.body_bytes(), status_code=answer.status, headers=answer.headers
        )

    async def health(http: HttpRequest) -> HttpResponse:
        return PlainTextResponse("wfkit is healthy")

    async def manifest(http: HttpRequest) -> HttpResponse:
        from wfkit.runtime.loading.loader import loaded_manifests

        builds: list[Any] = [m.data for m in loaded_manifests()]
        if not builds:
            return JSONResponse({"error": "no build loaded"}, status_code=404)
        return JSONResponse(builds[0])

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH + "{token:path}", webhook, methods=_METHODS),
            Route("/.well-known/workflow/v1/health", health, methods=["GET"]),
            Route("/.well-known/workflow/v1/manifest.json", manifest, methods=["GET"]),
        ],
        middleware=[Middleware(HeaderLimit)],
    )
