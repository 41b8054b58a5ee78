"""Webhooks: hooks resumed by an HTTP request to ``/.well-known/workflow/v1/webhook/{token}``.

``create_webhook(respond_with=None | Response | "manual")`` creates a hook whose
payloads are :class:`Request` objects. The HTTP side answers ``202`` with an empty
body by default, the static :class:`Response` when one was given, or — for
``"manual"`` — whatever a step sends with ``await request.respond_with(Response(...))``.
Hooks from ``create_hook`` are not resumable through the HTTP route.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from wfkit.runtime.api.hook_client import hook_not_found, live_hook, resume_hook_sync
from wfkit.runtime.api.workflow import Hook, _create_hook
from wfkit.runtime.context import current_step, current_workflow
from wfkit.runtime.errors import NotInWorkflowError
from wfkit.runtime.serialization import deserialize
from wfkit.runtime.serialization.at_rest import open_bytes, seal_bytes
from wfkit.runtime.world_config import resolve_world
from wfkit.worlds.base import World

WEBHOOK_PATH = "/.well-known/workflow/v1/webhook/"
BASE_URL_ENV = "WFKIT_BASE_URL"
MANUAL = "manual"
MANUAL_RESPONSE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Response:
    """An HTTP response a webhook answers with."""

    status: int = 200
    body: str | bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def body_bytes(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


@dataclass(frozen=True)
class Request:
    """The HTTP request that resumed a webhook (what awaiting a webhook gives)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    run_id: str = ""
    response_stream: str | None = None

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding)

    def json(self) -> Any:
        return json.loads(self.body)

    async def respond_with(self, response: Response) -> None:
        """Send the HTTP answer of a ``respond_with="manual"`` webhook. Steps only.

        Raises:
            NotInWorkflowError: called from a workflow (pass the request to a step) or
                outside any step.
            ValueError: the webhook was not created with ``respond_with="manual"``.
        """
        if current_workflow.get() is not None:
            raise NotInWorkflowError(
                "request.respond_with() sends an HTTP response, which is I/O: "
                "call it from a step, passing the request to that step"
            )
        step = current_step.get()
        if step is None or step.world is None:
            raise NotInWorkflowError("request.respond_with() can only be called inside a step")
        if self.response_stream is None:
            raise ValueError('respond_with() needs a webhook created with respond_with="manual"')
        payload = {
            "status": response.status,
            "headers": dict(response.headers),
            "body": response.body_bytes().decode("latin-1"),
        }
        answer = seal_bytes(json.dumps(payload).encode())  # its body is user data: sealed too
        step.world.streams.append(self.run_id, self.response_stream, answer)
        step.world.streams.close(self.run_id, self.response_stream)


class Webhook(Hook[Request]):
    """A hook resumed over HTTP; ``.url`` is where to send requests."""

    @property
    def url(self) -> str:
        base = os.environ.get(BASE_URL_ENV, "http://127.0.0.1:8000").rstrip("/")
        return f"{base}{WEBHOOK_PATH}{quote(self.token, safe='')}"


def create_webhook(respond_with: Response | Literal["manual"] | None = None) -> Webhook:
    """Create a webhook in the running workflow.

    Args:
        respond_with: None (answer ``202`` with no body), a static :class:`Response`,
            or ``"manual"`` (a step answers with ``request.respond_with(...)``).

    Raises:
        NotInWorkflowError: called outside a workflow.
        ValueError: ``respond_with`` is none of those.
    """
    if (
        respond_with is not None
        and respond_with != MANUAL
        and not isinstance(respond_with, Response)
    ):
        raise ValueError(
            f'invalid respond_with {respond_with!r}: use None, a wfkit Response, or "manual"'
        )
    hook = _create_hook(is_webhook=True, respond_with=respond_with)
    return Webhook(hook._call, hook._session)


def response_stream_name(run_id: str, hook_id: str) -> str:
    return f"{run_id.replace('wrun_', 'strm_', 1)}_webhook_{hook_id}"


def resume_webhook_sync(
    token: str,
    request: Request | None = None,
    *,
    method: str = "POST",
    url: str = "",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    world: World | str | None = None,
) -> Response:
    """``resume_webhook`` for sync code (blocks while a manual webhook's step answers)."""
    target = resolve_world(world)
    base = request or Request(method=method, url=url, headers=dict(headers or {}), body=body)
    mode, run_id, stream = _deliver(target, token, base)
    if isinstance(mode, Response):
        return mode
    if stream is None:
        return Response(status=202)
    deadline = time.monotonic() + MANUAL_RESPONSE_TIMEOUT
    while time.monotonic() < deadline:
        answer = _manual_response(target, run_id, stream)
        if answer is not None:
            return answer
        target.streams.wait(run_id, stream, after_index=0, timeout=1.0)
    return _NO_RESPONSE


async def resume_webhook(
    token: str,
    request: Request | None = None,
    *,
    method: str = "POST",
    url: str = "",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    world: World | str | None = None,
) -> Response:
    """Resume the webhook holding ``token`` with an HTTP request; return its answer.

    The world is read and written in worker threads, never on the caller's loop.

    Args:
        token: the webhook's token (the last part of its URL).
        request: the request to deliver; else one is made of ``method``, ``url``,
            ``headers`` and ``body``.
        world: the world (default ``get_world()``).

    Returns:
        ``202`` with no body, the webhook's static response, or (``"manual"``) what
        its step answered (``500`` if none did within 30 s).

    Raises:
        HookNotFoundError: no live *webhook* holds the token (``create_hook`` hooks
            are not resumable this way).
    """
    target = resolve_world(world)
    base = request or Request(method=method, url=url, headers=dict(headers or {}), body=body)
    mode, run_id, stream = await asyncio.to_thread(_deliver, target, token, base)
    if isinstance(mode, Response):
        return mode
    if stream is None:
        return Response(status=202)
    deadline = time.monotonic() + MANUAL_RESPONSE_TIMEOUT
    while time.monotonic() < deadline:
        answer = await asyncio.to_thread(_manual_response, target, run_id, stream)
        if answer is not None:
            return answer
        await asyncio.to_thread(target.streams.wait, run_id, stream, after_index=0, timeout=1.0)
    return _NO_RESPONSE


_NO_RESPONSE = Response(status=500, body=b"Workflow run did not send a response")


def _deliver(world: World, token: str, base: Request) -> tuple[Any, str, str | None]:
    """Resume the webhook holding ``token`` with ``base``.

    Returns:
        The webhook's ``respond_with`` (None, a Response or ``"manual"``), its run id,
        and the stream its manual answer arrives on (None unless manual).

    Raises:
        HookNotFoundError: no live webhook holds the token.
    """
    hook = live_hook(world, token)
    if not hook.is_webhook:
        raise hook_not_found(token, "webhook")
    mode = deserialize(hook.respond_with) if hook.respond_with is not None else None
    stream = response_stream_name(hook.run_id, hook.hook_id) if mode == MANUAL else None
    delivered = Request(
        method=base.method,
        url=base.url,
        headers=base.headers,
        body=base.body,
        run_id=hook.run_id,
        response_stream=stream,
    )
    resume_hook_sync(token, delivered, world=world)
    return mode, hook.run_id, stream


def _manual_response(world: World, run_id: str, stream: str) -> Response | None:
    """The answer a manual webhook's step wrote, if it has."""
    page = world.streams.read(run_id, stream)
    if not page.chunks:
        return None
    answer = json.loads(open_bytes(page.chunks[0]))
    return Response(
        status=int(answer["status"]),
        headers=dict(answer["headers"]),
        body=str(answer["body"]).encode("latin-1"),
    )
