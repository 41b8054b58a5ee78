"""``wfkit web``: a run inspector in the browser, read straight from a world.

Routes (server-rendered HTML, no JavaScript framework, no external assets)::

    GET  /                                  runs, newest first (?status=, ?workflow=; 100 at most)
    GET  /runs/{run_id}                     header, step timeline, waits, hooks, streams, event log
    POST /runs/{run_id}/cancel              append run_cancelled, then redirect to the run
    GET  /runs/{run_id}/streams/{name}      a stream's chunks, decoded
    GET  /api/runs                          JSON twin of / (same filters)
    GET  /api/runs/{run_id}                 JSON: {"run", "steps", "events"}

The inspector loads no build: it only reads records and events (and cancels, which
is one event). Markup lives in ``runtime/web_templates.py``. Needs the ``web`` extra.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from wfkit.runtime.api.streams import decode_chunk
from wfkit.runtime.tools import web_templates as tpl
from wfkit.runtime.tools.tables import short_name
from wfkit.runtime.world_config import resolve_world
from wfkit.worlds.base import Run, RunNotFoundError, World, utc_now

RUNS_LIMIT = 100
_SHORT_NAME_SCAN = 1000
"""Runs scanned when ``?workflow=`` is a short name (the world filters by full id only)."""


class BadFilter(ValueError):
    """A query parameter the runs list cannot use."""


def list_runs(world: World, *, status: str | None, workflow: str | None) -> list[Run]:
    """Runs newest first, filtered by status and by workflow id or short name.

    Raises:
        BadFilter: ``status`` is not a run status.
    """
    if status and status not in tpl.RUN_STATUSES:
        raise BadFilter(f"unknown status {status!r}; one of {', '.join(tpl.RUN_STATUSES)}")
    status_arg: Any = status or None
    if not workflow:
        return world.runs.list(status=status_arg, limit=RUNS_LIMIT)
    if "//" in workflow:
        return world.runs.list(status=status_arg, workflow_name=workflow, limit=RUNS_LIMIT)
    runs = world.runs.list(status=status_arg, limit=_SHORT_NAME_SCAN)
    return [r for r in runs if short_name(r.workflow_name) == workflow][:RUNS_LIMIT]


def chunk_view(data: bytes) -> tuple[str, str]:
    """One stored stream chunk as (kind, text): bytes as their repr, objects as JSON."""
    try:
        value = decode_chunk(data)
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
        return tpl.pretty_json(json.loads(body.decode("utf-8")))
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


def create_web_app(world: World | str | None = None) -> Starlette:
    """The inspector as an ASGI app reading ``world`` (a World, a spec, or the default)."""
    target = resolve_world(world)

    def _not_found(run_id: str, api: bool = False) -> Response:
        if api:
            return JSONResponse({"error": f"no run {run_id}"}, status_code=404)
        return HTMLResponse(
            tpl.message_page("Run not found", f"There is no run {run_id} in this world."),
            status_code=404,
        )

    def _filters(request: Request) -> tuple[str | None, str | None]:
        params = request.query_params
        return params.get("status") or None, (params.get("workflow") or "").strip() or None

    async def runs(request: Request) -> Response:
        status, workflow = _filters(request)
        try:
            found = list_runs(target, status=status, workflow=workflow)
        except BadFilter as exc:
            return HTMLResponse(tpl.message_page("Bad filter", str(exc)), status_code=400)
        return HTMLResponse(tpl.runs_page(found, status=status, workflow=workflow))

    async def run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            record = target.runs.get(run_id)
        except RunNotFoundError:
            return _not_found(run_id)
        steps = sorted(target.steps.list(run_id), key=lambda s: (s.created_at, s.step_id))
        body = tpl.run_page(
            record,
            steps=steps,
            events=target.events.list(run_id),
            waits=target.waits.list(run_id),
            hooks=target.hooks.list(run_id=run_id),
            streams=target.streams.list(run_id),
            now=utc_now(),
            refresh=request.query_params.get("refresh") != "0",
        )
        return HTMLResponse(body)

    async def cancel(request: Request) -> Response:
        from wfkit.runtime.api.client import cancel_run

        run_id = request.path_params["run_id"]
        try:
            cancel_run(run_id, world=target, reason="cancelled from wfkit web")
        except RunNotFoundError:
            return _not_found(run_id)
        return RedirectResponse(tpl.run_href(run_id), status_code=303)

    async def stream(request: Request) -> Response:
        run_id, name = request.path_params["run_id"], request.path_params["name"]
        try:
            record = target.runs.get(run_id)
        except RunNotFoundError:
            return _not_found(run_id)
        if name not in target.streams.list(run_id):
            return HTMLResponse(
                tpl.message_page("Stream not found", f"Run {run_id} has no stream {name}."),
                status_code=404,
            )
        chunks, closed = read_chunks(target, run_id, name)
        return HTMLResponse(tpl.stream_page(record, name, [chunk_view(c) for c in chunks], closed))

    async def api_runs(request: Request) -> Response:
        status, workflow = _filters(request)
        try:
            found = list_runs(target, status=status, workflow=workflow)
        except BadFilter as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse([r.model_dump(mode="json") for r in found])

    async def api_run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            record = target.runs.get(run_id)
        except RunNotFoundError:
            return _not_found(run_id, api=True)
        steps = sorted(target.steps.list(run_id), key=lambda s: (s.created_at, s.step_id))
        return JSONResponse(
            {
                "run": record.model_dump(mode="json"),
                "steps": [s.model_dump(mode="json") for s in steps],
                "events": [e.model_dump(mode="json") for e in target.events.list(run_id)],
            }
        )

    return Starlette(
        routes=[
            Route("/", runs, methods=["GET"]),
            Route("/runs/{run_id}", run, methods=["GET"]),
            Route("/runs/{run_id}/cancel", cancel, methods=["POST"]),
            Route("/runs/{run_id}/streams/{name}", stream, methods=["GET"]),
            Route("/api/runs", api_runs, methods=["GET"]),
            Route("/api/runs/{run_id}", api_run, methods=["GET"]),
        ]
    )
