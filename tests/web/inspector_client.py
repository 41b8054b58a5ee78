"""Driving the inspector app in-process (httpx over ASGI) and reading its pages as text."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

from wfkit.runtime.api.client import start
from wfkit.runtime.engine.worker import Worker
from wfkit.runtime.tools.web import create_web_app
from wfkit.worlds.base import World

T = TypeVar("T")
BASE_URL = "http://127.0.0.1:3456"


def run_async(coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
    """Run ``coro`` to completion on a fresh event loop, bounded by ``timeout``."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def _finish(world: World, workflow_id: str, *args: Any) -> str:
    run = await start(workflow_id, *args, world=world)
    await Worker(world=world, poll_interval=0.01).run_until_complete(run.run_id, timeout=20)
    return run.run_id


def finish(world: World, workflow_id: str, *args: Any) -> str:
    """Start a run and work until it ends; its id."""
    return run_async(_finish(world, workflow_id, *args))


def work_until_done(world: World, run_id: str) -> None:
    """Work the world until run ``run_id`` (already started) ends."""
    worker = Worker(world=world, poll_interval=0.01)
    run_async(worker.run_until_complete(run_id, timeout=20))


async def _suspend(world: World, workflow_id: str, *args: Any) -> str:
    run = await start(workflow_id, *args, world=world)
    await Worker(world=world, poll_interval=0.01).drain(timeout=10)
    return run.run_id


def suspend(world: World, workflow_id: str, *args: Any) -> str:
    """Start a run and work until it waits (for a hook or a long sleep); its id."""
    return run_async(_suspend(world, workflow_id, *args))


CSRF_TOKEN = "test-csrf-token"
"""The inspector apps here are made with this CSRF token (a server picks a random one)."""


def request(
    world: World, method: str, path: str, *, csrf: bool = True, **kwargs: Any
) -> httpx.Response:
    """One request to the inspector app over ASGI (as a same-origin browser would).

    A POST carries the CSRF token unless ``csrf`` is False: in its form (``data=``) as the
    pages' forms do, else in the ``X-Wfkit-Csrf`` header as scripts do.
    """
    if csrf and method.upper() == "POST":
        if "data" in kwargs:
            kwargs["data"] = {**kwargs["data"], "csrf_token": CSRF_TOKEN}
        else:
            kwargs["headers"] = {"x-wfkit-csrf": CSRF_TOKEN, **kwargs.get("headers", {})}

    async def go() -> httpx.Response:
        app = create_web_app(world, csrf_token=CSRF_TOKEN)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            return await client.request(method, path, **kwargs)

    return run_async(go())


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
