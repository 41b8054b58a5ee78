"""The HTTP side of wfkit: an ASGI app (Starlette) users mount or run with ``wfkit serve``.

Routes: ``/.well-known/workflow/v1/webhook/{token}`` (any method) resumes a webhook,
``/.well-known/workflow/v1/health`` answers 200, ``/.well-known/workflow/v1/manifest.json``
serves the loaded build's manifest. Needs the ``web`` extra (starlette, uvicorn).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.responses import Response as HttpResponse
from starlette.routing import Route

from wfkit.runtime.api.webhooks import WEBHOOK_PATH, Request, resume_webhook
from wfkit.runtime.world_config import resolve_world
from wfkit.worlds.base import HookNotFoundError, World

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create_app(world: World | str | None = None) -> Starlette:
    """An ASGI app serving webhooks, health and the manifest for ``world``."""
    target = resolve_world(world)

    async def webhook(http: HttpRequest) -> HttpResponse:
        token = http.path_params["token"]
        request = Request(
            method=http.method,
            url=str(http.url),
            headers={k.lower(): v for k, v in http.headers.items()},
            body=await http.body(),
        )
        try:
            answer = await resume_webhook(token, request, world=target)
        except HookNotFoundError:
            return HttpResponse(status_code=404)
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
        ]
    )
