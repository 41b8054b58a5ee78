"""The runs list (``/``): filters, one row per run, paging."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from wfkit.runtime.tools.tables import short_name
from wfkit.runtime.tools.web.markup import (
    ACTIVE,
    RUN_STATUSES,
    badge,
    error_summary,
    esc,
    fmt_duration,
    fmt_time,
    run_href,
    run_link,
    table,
)
from wfkit.runtime.tools.web.queries import RunsPage, RunsQuery

_ERROR_CHARS = 160


def _filters(query: RunsQuery, workflows: list[str]) -> str:
    options = "".join(
        f'<option value="{s}"{" selected" if s == (query.status or "") else ""}>{s or "any"}</option>'
        for s in ("", *RUN_STATUSES)
    )
    suggestions = "".join(
        f'<option value="{esc(name)}">{esc(short_name(name))}</option>'
        for name in sorted({*(short_name(w) for w in workflows), *workflows})
    )
    return (
        '<form class="filters" method="get" action="/">'
        f'<label>status <select name="status">{options}</select></label>'
        f'<label>workflow <input name="workflow" list="workflow-names" value="{esc(query.workflow or "")}" '
        'size="44" placeholder="name or workflow id"></label>'
        f'<datalist id="workflow-names">{suggestions}</datalist>'
        '<button type="submit">filter</button> <a href="/">clear</a></form>'
    )


def _href(query: RunsQuery, **changes: object) -> str:
    params = query.params(**changes)
    return "/?" + urlencode(params) if params else "/"


def _pager(listing: RunsPage) -> str:
    query = listing.query
    first = (query.page - 1) * query.per_page + 1
    last = first + len(listing.runs) - 1
    links = []
    if query.page > 1:
        links.append(f'<a rel="prev" href="{esc(_href(query, page=query.page - 1))}">← newer</a>')
    shown = f"runs {first} to {last}" if listing.runs else "no runs on this page"
    links.append(f'<span class="muted">page {query.page} · {shown}</span>')
    if listing.has_next:
        links.append(f'<a rel="next" href="{esc(_href(query, page=query.page + 1))}">older →</a>')
    return f'<nav class="pager">{"".join(links)}</nav>'


def runs_body(listing: RunsPage, now: datetime) -> str:
    """The runs list's ``<main>``: filters, the table (duration, error summary, what a
    live run waits on, child-of links), and the pager."""
    rows = []
    for run in listing.runs:
        parent = listing.parents.get(run.run_id)
        child_of = (
            f'<div class="child-of muted">child of {run_link(parent)}</div>' if parent else ""
        )
        waiting = listing.waiting.get(run.run_id)
        status = badge(run.status) + (
            f'<div class="waiting-cell">{esc(waiting)}</div>' if waiting else ""
        )
        end = run.completed_at or (now if run.status in ACTIVE else None)
        summary = error_summary(run.error)
        error = (
            f'<span class="error-summary" title="{esc(summary)}">{esc(summary[:_ERROR_CHARS])}'
            f"{'…' if len(summary) > _ERROR_CHARS else ''}</span>"
        )
        rows.append(
            (
                f'<a href="{esc(_href(RunsQuery(workflow=run.workflow_name)))}" '
                f'title="{esc(run.workflow_name)}">{esc(short_name(run.workflow_name))}</a>',
                f'<a class="mono nowrap" href="{esc(run_href(run.run_id))}">{esc(run.run_id)}</a>'
                + child_of,
                status,
                f'<span class="nowrap">{esc(fmt_time(run.created_at))}</span>',
                '<span class="nowrap">'
                + esc(fmt_duration(run.started_at or run.created_at, end))
                + ("…" if run.status in ACTIVE else "")
                + "</span>",
                error if summary else "",
            )
        )
    return (
        "<h1>Runs</h1>"
        + _filters(listing.query, listing.workflows)
        + table(
            ["workflow", "run id", "status", "created", "duration", "error"],
            rows,
            empty="No runs.",
        )
        + _pager(listing)
    )
