"""The inspector's ASGI app: routes, world reads in worker threads, actions.

Every world call goes through :func:`_read` (``anyio.to_thread``), so a slow database
read stalls one request, never the server. Handlers only parse the request, read, and
hand records to the pure markup modules.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import parse_qs, urlencode

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from wfkit.runtime.api.client import cancel_run_sync, resume_hook_sync, retry_run_sync
from wfkit.runtime.api.streams import decode_chunk
from wfkit.runtime.errors import PayloadDecryptionError
from wfkit.runtime.serialization.at_rest import reveal
from wfkit.runtime.tools.hook_payloads import PayloadCheck, check_payload, schema_of
from wfkit.runtime.tools.http_server import HeaderLimit
from wfkit.runtime.tools.tables import short_name
from wfkit.runtime.tools.web import assets, queries
from wfkit.runtime.tools.web.live import LIST_POLL_SECONDS, live_response
from wfkit.runtime.tools.web.markup import (
    PARTIAL_HEADER,
    message_page,
    page,
    pretty_json,
    run_href,
    stream_href,
)
from wfkit.runtime.tools.web.queries import BadFilter, RunsQuery
from wfkit.runtime.tools.web.run_html import RunPageState, run_body, stream_body
from wfkit.runtime.tools.web.runs_html import runs_body
from wfkit.runtime.tools.web.security import MAX_FORM_BYTES, InspectorGuard
from wfkit.runtime.world_config import resolve_world
from wfkit.worlds.base import (
    EntityConflictError,
    HookNotFoundError,
    Run,
    RunNotFoundError,
    World,
    utc_now,
)

T = TypeVar("T")

_NOTICES = {
    "cancelled": "Run cancelled.",
    "not-cancelled": "The run had already ended; nothing was cancelled.",
    "resumed": "Payload delivered; the run continues when a worker picks it up.",
    "retried": "Run retried: a worker replays its log on the code it runs now.",
    "not-retried": "Only a failed run can be retried; nothing was done.",
}


async def _read(fn: Callable[[], T]) -> T:
    """Run a blocking world read in a worker thread."""
    return await anyio.to_thread.run_sync(fn)


def chunk_view(data: bytes) -> tuple[str, str]:
    """One stored stream chunk as (kind, text): bytes as their repr, objects as JSON."""
    try:
        value = decode_chunk(data)
    except PayloadDecryptionError as exc:  # shown as encrypted, never as its bytes
        return "encrypted", f"[encrypted with key {exc.key_id}]"
    except Exception as exc:  # not readable here (e.g. a class from an unloaded build)
        if data[:1] == b"j":
            return "json (serialized)", _json_text(data[1:])
        return "undecodable", f"{type(exc).__name__}: {exc}\n{data!r}"
    if isinstance(value, bytes):
        return "bytes", repr(value)
    try:
        return "json", json.dumps(value, indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return "json (serialized)", _json_text(data[1:])


def _json_text(body: bytes) -> str:
    try:
        return pretty_json(json.loads(body.decode("utf-8")))
    except ValueError:
        return repr(body)


def read_chunks(world: World, run_id: str, name: str) -> tuple[list[bytes], bool]:
    """Every chunk of a stream so far, and whether it is closed."""
    chunks: list[bytes] = []
    while True:
        page = world.streams.read(run_id, name, start_index=len(chunks))
        chunks.extend(page.chunks)
        if page.closed or not page.chunks:
            return chunks, page.closed


def _live_url(path: str, token: str, params: dict[str, str] | None = None) -> str:
    return f"{path}?{urlencode({**(params or {}), 'since': token})}"


class _Pages:
    """The route handlers, bound to one world."""

    def __init__(self, world: World, csrf_token: str) -> None:
        self.world = world
        self.csrf_token = csrf_token
        self.parents = queries.ParentCache()

    # --- helpers -------------------------------------------------------------------

    def _html(
        self, request: Request, title: str, body: str, live: str | None, status: int = 200
    ) -> Response:
        # The page and its live-update fragment share a URL: never let a cache (or the
        # back button) hand one out for the other.
        headers = {"cache-control": "no-store", "vary": PARTIAL_HEADER}
        if request.headers.get(PARTIAL_HEADER):
            return HTMLResponse(body, status_code=status, headers=headers)
        markup = page(title, body, live_url=live, csrf_token=self.csrf_token)
        return HTMLResponse(markup, status_code=status, headers=headers)

    def _not_found(self, run_id: str, api: bool = False) -> Response:
        if api:
            return JSONResponse({"error": f"no run {run_id}"}, status_code=404)
        return HTMLResponse(
            message_page("Run not found", f"There is no run {run_id} in this world."),
            status_code=404,
        )

    def _runs_query(self, request: Request) -> RunsQuery:
        return RunsQuery.parse(dict(request.query_params))

    async def _run_page(
        self, request: Request, run_id: str, state: RunPageState, status: int = 200
    ) -> Response:
        world = self.world

        try:
            view = await _read(lambda: queries.load_run_view(world, run_id, self.parents))
        except RunNotFoundError:
            return self._not_found(run_id)
        live = queries.view_state(view)
        path = run_href(run_id) + "/live"
        live_url = None if live.final else _live_url(path, live.token)
        title = f"run {short_name(view.run.workflow_name)}"
        return self._html(request, title, run_body(view, state), live_url, status)

    # --- pages ---------------------------------------------------------------------

    async def runs(self, request: Request) -> Response:
        try:
            query = self._runs_query(request)
        except BadFilter as exc:
            return HTMLResponse(message_page("Bad filter", str(exc)), status_code=400)
        world = self.world

        def load() -> tuple[queries.RunsPage, queries.LiveState]:
            return queries.list_runs_page(world, query), queries.runs_state(world, query)

        listing, live = await _read(load)
        live_url = _live_url("/live", live.token, query.params())
        return self._html(request, "runs", runs_body(listing, utc_now()), live_url)

    async def runs_live(self, request: Request) -> Response:
        try:
            query = self._runs_query(request)
        except BadFilter as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return live_response(
            request,
            lambda since: queries.runs_state(self.world, query, since),
            interval=LIST_POLL_SECONDS,
        )

    async def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        done = request.query_params.get("done", "")
        state = RunPageState(
            csrf_token=self.csrf_token,
            scale="linear" if request.query_params.get("scale") == "linear" else "compressed",
            notice=_NOTICES.get(done, ""),
            notice_bad=done.startswith("not-"),
        )
        return await self._run_page(request, run_id, state)

    async def run_live(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        return live_response(request, lambda since: queries.run_state(self.world, run_id, since))

    async def stream(self, request: Request) -> Response:
        run_id, name = request.path_params["run_id"], request.path_params["name"]
        world = self.world

        def load() -> tuple[Run, list[bytes], bool] | None:
            record = world.runs.get(run_id)
            if name not in world.streams.list(run_id):
                return None
            chunks, closed = read_chunks(world, run_id, name)
            return record, chunks, closed

        try:
            loaded = await _read(load)
        except RunNotFoundError:
            return self._not_found(run_id)
        if loaded is None:
            return HTMLResponse(
                message_page("Stream not found", f"Run {run_id} has no stream {name}."),
                status_code=404,
            )
        record, chunks, closed = loaded
        live = queries.stream_view_state(len(chunks), closed)
        live_url = (
            None if live.final else _live_url(stream_href(run_id, name) + "/live", live.token)
        )
        body = stream_body(record, name, [chunk_view(c) for c in chunks], closed)
        return self._html(request, f"stream {name}", body, live_url)

    async def stream_live(self, request: Request) -> Response:
        run_id, name = request.path_params["run_id"], request.path_params["name"]
        return live_response(
            request, lambda since: queries.stream_state(self.world, run_id, name, since)
        )

    # --- actions -------------------------------------------------------------------

    async def cancel(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            cancelled = await _read(
                lambda: cancel_run_sync(run_id, world=self.world, reason="cancelled from wfkit web")
            )
        except RunNotFoundError:
            return self._not_found(run_id)
        done = "cancelled" if cancelled else "not-cancelled"
        return RedirectResponse(f"{run_href(run_id)}?done={done}", status_code=303)

    def _retry(self, run_id: str) -> bool:
        """``retry_run`` (blocking: call through ``_read``); False when the run is not failed.

        Raises:
            RunNotFoundError: no such run.
        """
        try:
            retry_run_sync(run_id, world=self.world)
        except EntityConflictError:
            return False
        return True

    async def retry(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            retried = await _read(lambda: self._retry(run_id))
        except RunNotFoundError:
            return self._not_found(run_id)
        done = "retried" if retried else "not-retried"
        return RedirectResponse(f"{run_href(run_id)}?done={done}", status_code=303)

    async def resume(self, request: Request) -> Response:
        run_id, hook_id = request.path_params["run_id"], request.path_params["hook_id"]
        body = await _read_limited(request)
        if body is None:
            return HTMLResponse(
                message_page("Payload too large", f"At most {MAX_FORM_BYTES} bytes."), 413
            )
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return HTMLResponse(message_page("Bad request", "The form is not UTF-8."), 400)
        text = (fields.get("payload") or [""])[0]
        outcome = await _read(lambda: self._deliver(run_id, hook_id, text))
        if isinstance(outcome, str):
            return HTMLResponse(message_page("Cannot resume", outcome), status_code=409)
        if outcome.ok:
            return RedirectResponse(f"{run_href(run_id)}?done=resumed#hooks", status_code=303)
        state = RunPageState(
            csrf_token=self.csrf_token, rejected={hook_id: (text, outcome.problems)}
        )
        state.notice, state.notice_bad = (
            "The payload was not sent: " + "; ".join(outcome.problems),
            True,
        )
        return await self._run_page(request, run_id, state, status=400)

    def _deliver(self, run_id: str, hook_id: str, text: str) -> PayloadCheck | str:
        """Check ``text`` for the hook and deliver it (blocking: call through ``_read``).

        Returns:
            The check (delivered when it is ok), or why the hook cannot take a payload.
        """
        world = self.world
        try:
            hook = world.hooks.get(hook_id)
        except HookNotFoundError:
            return f"There is no hook {hook_id}."
        if hook.run_id != run_id:
            return f"Hook {hook_id} belongs to another run."
        if hook.status != "active":
            return f"Hook {hook_id} is {hook.status}; it takes no more payloads."
        if hook.is_webhook:
            return "A webhook is resumed by an HTTP request to its URL, not from here."
        check = check_payload(text, schema_of(hook.metadata))
        if check.ok:
            try:
                resume_hook_sync(hook.token, check.value, world=world)
            except HookNotFoundError:
                return "The run ended before the payload arrived; nothing was delivered."
        return check

    # --- JSON twins ------------------------------------------------------------------

    async def api_csrf(self, request: Request) -> Response:
        """The CSRF token scripts send back in ``X-Wfkit-Csrf`` (another site cannot read
        it: no CORS, and the Host check stops DNS rebinding)."""
        return JSONResponse({"csrf_token": self.csrf_token}, headers={"cache-control": "no-store"})

    async def api_runs(self, request: Request) -> Response:
        try:
            query = self._runs_query(request)
        except BadFilter as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        listing = await _read(lambda: queries.list_runs_page(self.world, query))
        headers = {}
        if listing.has_next:
            headers["link"] = (
                f'</api/runs?{urlencode(query.params(page=query.page + 1))}>; rel="next"'
            )
        runs = [reveal(r.model_dump(mode="json")) for r in listing.runs]
        return JSONResponse(runs, headers=headers)

    async def api_run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            view = await _read(lambda: queries.load_run_view(self.world, run_id, self.parents))
        except RunNotFoundError:
            return self._not_found(run_id, api=True)
        # Payloads opened when this process has their key, else "[encrypted with key …]".
        return JSONResponse(
            reveal(
                {
                    "run": view.run.model_dump(mode="json"),
                    "steps": [s.model_dump(mode="json") for s in view.steps],
                    "events": [e.model_dump(mode="json") for e in view.events],
                    "waits": [w.model_dump(mode="json") for w in view.waits],
                    "hooks": [h.model_dump(mode="json") for h in view.hooks],
                    "streams": view.streams,
                    "parent_run_id": view.parent,
                    "child_run_ids": list(view.children),
                }
            )
        )

    async def api_cancel(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            cancelled = await _read(
                lambda: cancel_run_sync(run_id, world=self.world, reason="cancelled from wfkit web")
            )
        except RunNotFoundError:
            return self._not_found(run_id, api=True)
        return JSONResponse({"run_id": run_id, "cancelled": cancelled})

    async def api_retry(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            retried = await _read(lambda: self._retry(run_id))
        except RunNotFoundError:
            return self._not_found(run_id, api=True)
        if not retried:
            return JSONResponse(
                {"error": "only a failed run can be retried", "run_id": run_id}, status_code=409
            )
        return JSONResponse({"run_id": run_id, "retried": True})

    async def api_resume(self, request: Request) -> Response:
        run_id, hook_id = request.path_params["run_id"], request.path_params["hook_id"]
        body = await _read_limited(request)
        if body is None:
            return JSONResponse(
                {"error": f"payload larger than {MAX_FORM_BYTES} bytes"}, status_code=413
            )
        text = body.decode("utf-8", errors="replace")
        outcome = await _read(lambda: self._deliver(run_id, hook_id, text))
        if isinstance(outcome, str):
            return JSONResponse({"error": outcome}, status_code=409)
        if not outcome.ok:
            return JSONResponse(
                {"error": "payload rejected", "problems": list(outcome.problems)}, 400
            )
        return JSONResponse({"run_id": run_id, "hook_id": hook_id, "resumed": True})


async def _read_limited(request: Request) -> bytes | None:
    """The request body, or None when it is larger than ``MAX_FORM_BYTES``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    return bytes(body)


def _asset(text: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    """A route serving one of the inspector's own assets (``assets.py``)."""

    async def serve(request: Request) -> Response:
        return Response(text, media_type=media_type, headers={"cache-control": "no-cache"})

    return serve


def create_web_app(
    world: World | str | None = None,
    *,
    allowed_hosts: tuple[str, ...] = (),
    access_token: str | None = None,
    csrf_token: str | None = None,
) -> Starlette:
    """The inspector as an ASGI app.

    Args:
        world: a World, a world spec, or None for the default world.
        allowed_hosts: host names it answers to besides loopback names and IP addresses
            (see ``security``).
        access_token: when set, every request must carry it (``security``); required
            to serve anything but loopback (``security.binding_problem``).
        csrf_token: the token mutating requests send back (default: a new random one).
    """
    token = csrf_token or secrets.token_urlsafe(32)
    pages = _Pages(resolve_world(world), token)
    routes = [
        Route("/", pages.runs, methods=["GET"]),
        Route("/live", pages.runs_live, methods=["GET"]),
        Route("/runs/{run_id}", pages.run, methods=["GET"]),
        Route("/runs/{run_id}/live", pages.run_live, methods=["GET"]),
        Route("/runs/{run_id}/cancel", pages.cancel, methods=["POST"]),
        Route("/runs/{run_id}/retry", pages.retry, methods=["POST"]),
        Route("/runs/{run_id}/hooks/{hook_id}/resume", pages.resume, methods=["POST"]),
        Route("/runs/{run_id}/streams/{name}", pages.stream, methods=["GET"]),
        Route("/runs/{run_id}/streams/{name}/live", pages.stream_live, methods=["GET"]),
        Route("/api/csrf", pages.api_csrf, methods=["GET"]),
        Route("/api/runs", pages.api_runs, methods=["GET"]),
        Route("/api/runs/{run_id}", pages.api_run, methods=["GET"]),
        Route("/api/runs/{run_id}/cancel", pages.api_cancel, methods=["POST"]),
        Route("/api/runs/{run_id}/retry", pages.api_retry, methods=["POST"]),
        Route("/api/runs/{run_id}/hooks/{hook_id}/resume", pages.api_resume, methods=["POST"]),
        Route("/assets/inspector.css", _asset(assets.STYLESHEET, "text/css"), methods=["GET"]),
        Route("/assets/inspector.js", _asset(assets.SCRIPT, "text/javascript"), methods=["GET"]),
    ]
    guard = Middleware(
        InspectorGuard,
        csrf_token=token,
        allowed_hosts=allowed_hosts,
        access_token=access_token,
    )
    return Starlette(routes=routes, middleware=[Middleware(HeaderLimit), guard])


__all__ = ["chunk_view", "create_web_app", "read_chunks"]
