"""``wfkit web``: a run inspector in the browser, read straight from a world.

Routes (server-rendered HTML plus one small script; no external assets)::

    GET  /                                   runs, newest first (?status=, ?workflow=, ?page=, ?per_page=)
    GET  /runs/{run_id}                      header, waterfall timeline, hooks, sleeps, I/O, streams, events
    POST /runs/{run_id}/cancel               append run_cancelled, then back to the run
    POST /runs/{run_id}/retry                retry a failed run (run_retried), then back to it
    POST /runs/{run_id}/hooks/{hook_id}/resume   deliver a JSON payload (form field ``payload``)
    GET  /runs/{run_id}/streams/{name}       a stream's chunks, decoded
    GET  /live, /runs/{run_id}/live, .../streams/{name}/live   server-sent events: the page changed
    GET  /api/runs, /api/runs/{run_id}       JSON twins of the pages
    GET  /api/csrf                           the CSRF token scripts send back (``security``)
    POST /api/runs/{run_id}/cancel, .../retry, .../hooks/{hook_id}/resume   JSON twins of the actions

The inspector loads no build: it reads records and events, and its actions are the
client API's (``cancel_run_sync``, ``retry_run_sync``, ``resume_hook_sync``). Modules: ``app`` (routes and actions),
``queries`` (world reads, run in threads), ``timeline`` (the waterfall's data and scale),
``*_html`` and ``markup`` (pure markup), ``live`` (server-sent events), ``security``
(Host, access token, cross-site and CSRF checks), ``assets`` (the stylesheet and script). A
typed-in hook payload is checked by ``wfkit.runtime.tools.hook_payloads`` (shared with
``wfkit resume``). Needs the ``web`` extra.
"""

from __future__ import annotations

from wfkit.runtime.tools.web.app import chunk_view, create_web_app, read_chunks

__all__ = ["chunk_view", "create_web_app", "read_chunks"]
