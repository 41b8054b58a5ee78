"""HTML for ``wfkit web`` (``runtime/web.py``): pure functions from records to markup.

Everything a user or a workflow wrote (names, ids, payloads, errors) goes through
``html.escape`` via :func:`esc`; no function here reads a world. No external assets:
one inline ``<style>``, and refreshing is a ``<meta http-equiv="refresh">``.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from wfkit.runtime.tools.tables import short_name
from wfkit.worlds.base import Event, Hook, Run, Step, Wait

REFRESH_SECONDS = 2
RUN_STATUSES = ("pending", "running", "completed", "failed", "cancelled")
ACTIVE = frozenset({"pending", "running"})

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header.top{background:#24292f;color:#fff;padding:10px 24px;display:flex;gap:16px;align-items:center}
header.top a{color:#fff;text-decoration:none;font-weight:600}
main{padding:16px 24px;max-width:1280px}
h1{font-size:20px;margin:8px 0 12px}h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d0d7de}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;font-weight:600;font-size:12px;text-transform:uppercase;color:#57606a}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#fff;border:1px solid #d0d7de;padding:8px 10px;overflow:auto;max-height:480px;margin:4px 0}
pre.error{background:#fff5f5;border-color:#ffb3b3}
a{color:#0969da}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.s-pending{background:#8c959f}.s-running{background:#0969da}.s-completed{background:#1a7f37}
.s-failed{background:#cf222e}.s-cancelled{background:#9a6700}.s-waiting{background:#8250df}
.s-active{background:#0969da}.s-open{background:#0969da}.s-closed{background:#57606a}.s-disposed{background:#8c959f}.s-conflicted{background:#cf222e}
.muted{color:#57606a}.empty{color:#57606a;font-style:italic;padding:8px 0}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0 0 8px}
dl.meta dt{color:#57606a}dl.meta dd{margin:0}
form.filters{display:flex;gap:8px;align-items:center;margin-bottom:12px}
.track{position:relative;height:14px;background:#eaeef2;border-radius:3px;min-width:240px}
.bar{position:absolute;top:0;height:14px;border-radius:3px;min-width:2px}
details summary{cursor:pointer;color:#0969da}
button.cancel{background:#cf222e;color:#fff;border:0;border-radius:6px;padding:5px 14px;cursor:pointer}
"""


def esc(value: Any) -> str:
    """``value`` as text, HTML-escaped (quotes too); ``None`` → ``-``."""
    if value is None:
        return "-"
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


def fmt_time(value: datetime | None) -> str:
    """A timestamp with milliseconds, or ``-``."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value else "-"


def pretty_json(value: Any) -> str:
    """Indented JSON of a stored value (anything not JSON falls back to ``str``)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def badge(status: str) -> str:
    """A coloured status pill."""
    return f'<span class="badge s-{esc(status)}">{esc(status)}</span>'


def run_href(run_id: str) -> str:
    """The inspector page of one run."""
    return "/runs/" + quote(run_id, safe="")


def stream_href(run_id: str, name: str) -> str:
    """The inspector page of one stream of a run."""
    return f"{run_href(run_id)}/streams/{quote(name, safe='')}"


def page(title: str, body: str, *, refresh: bool = False) -> str:
    """A whole HTML document around ``body``."""
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"{meta}<title>{esc(title)} · wfkit</title><style>{_STYLE}</style></head>"
        '<body><header class="top"><a href="/">wfkit runs</a></header>'
        f"<main>{body}</main></body></html>\n"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str) -> str:
    """An HTML table whose cells are already markup; ``empty`` when there is no row."""
    lines = ["<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows]
    if not lines:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


# --- runs list ------------------------------------------------------------------------


def runs_page(runs: Sequence[Run], *, status: str | None, workflow: str | None) -> str:
    """``/``: the filter form and one row per run, newest first."""
    options = "".join(
        f'<option value="{s}"{" selected" if s == (status or "") else ""}>{s or "any"}</option>'
        for s in ("", *RUN_STATUSES)
    )
    form = (
        '<form class="filters" method="get" action="/">'
        f'<label>status <select name="status">{options}</select></label>'
        f'<label>workflow <input name="workflow" value="{esc(workflow or "")}" size="50" '
        'placeholder="name or workflow id"></label>'
        '<button type="submit">filter</button> <a href="/">clear</a></form>'
    )
    rows = [
        (
            f'<a href="/?{esc(urlencode({"workflow": r.workflow_name}))}" '
            f'title="{esc(r.workflow_name)}">{esc(short_name(r.workflow_name))}</a>',
            f'<a class="mono" href="{esc(run_href(r.run_id))}">{esc(r.run_id)}</a>',
            badge(r.status),
            esc(fmt_time(r.created_at)),
            esc(fmt_time(r.completed_at)),
        )
        for r in runs
    ]
    refresh = any(r.status in ACTIVE for r in runs)
    body = (
        f"<h1>Runs</h1>{form}"
        + table(["workflow", "run id", "status", "created", "completed"], rows, empty="No runs.")
        + (f'<p class="muted">Refreshing every {REFRESH_SECONDS} s.</p>' if refresh else "")
    )
    return page("runs", body, refresh=refresh)


# --- one run --------------------------------------------------------------------------


def _error_block(error: Mapping[str, Any] | None) -> str:
    if not error:
        return ""
    head = f"{error.get('type', '')}: {error.get('message', '')}"
    stack = error.get("stack") or ""
    return f'<pre class="error">{esc(head)}</pre>' + (
        f'<details open><summary>traceback</summary><pre class="error">{esc(stack)}</pre></details>'
        if stack
        else ""
    )


def _run_header(run: Run, *, can_cancel: bool) -> str:
    meta = [
        (
            "workflow",
            f'<span title="{esc(run.workflow_name)}">{esc(short_name(run.workflow_name))}'
            f'</span> <span class="muted mono">{esc(run.workflow_name)}</span>',
        ),
        ("status", badge(run.status)),
        ("created", esc(fmt_time(run.created_at))),
        ("started", esc(fmt_time(run.started_at))),
        ("completed", esc(fmt_time(run.completed_at))),
    ]
    if run.deployment_id:
        meta.append(("deployment", esc(run.deployment_id)))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)
    parts = [f'<h1>Run <span class="mono">{esc(run.run_id)}</span></h1><dl class="meta">{dl}</dl>']
    if can_cancel:
        parts.append(
            f'<form method="post" action="{esc(run_href(run.run_id))}/cancel">'
            '<button class="cancel" type="submit">Cancel run</button></form>'
        )
    parts.append(f"<h2>Input</h2><pre>{esc(pretty_json(run.input))}</pre>")
    if run.status == "completed":
        parts.append(f"<h2>Output</h2><pre>{esc(pretty_json(run.output))}</pre>")
    if run.error:
        parts.append("<h2>Error</h2>" + _error_block(run.error))
    return "".join(parts)


def _span(
    run: Run, steps: Sequence[Step], events: Sequence[Event], now: datetime
) -> tuple[datetime, float]:
    start = min([run.created_at, *(e.created_at for e in events[:1])])
    ends = [run.completed_at or now]
    ends += [s.completed_at for s in steps if s.completed_at]
    ends += [e.created_at for e in events[-1:]]
    seconds = (max(ends) - start).total_seconds()
    return start, max(seconds, 1e-6)


def step_timeline(run: Run, steps: Sequence[Step], events: Sequence[Event], now: datetime) -> str:
    """One row per step: name, status, attempt, and a bar from started to completed
    placed on the run's span (percentages, plain divs)."""
    start, span = _span(run, steps, events, now)
    rows = []
    for step in steps:
        begin = step.started_at or step.created_at
        end = step.completed_at or (now if step.status in ACTIVE else begin)
        left = max(0.0, min(100.0, (begin - start).total_seconds() / span * 100))
        width = max(0.4, min(100.0 - left, (end - begin).total_seconds() / span * 100))
        took = (end - begin).total_seconds() * 1000
        bar = (
            f'<div class="track"><div class="bar s-{esc(step.status)}" '
            f'style="left:{left:.2f}%;width:{width:.2f}%" '
            f'title="{esc(fmt_time(begin))} → {esc(fmt_time(step.completed_at))} '
            f'({took:.1f} ms)"></div></div>'
        )
        error = (step.error or {}).get("message")
        rows.append(
            (
                f'<span title="{esc(step.step_name)}">{esc(short_name(step.step_name))}</span>'
                f'<br><span class="muted mono">{esc(step.step_id)}</span>',
                badge(step.status),
                esc(step.attempt),
                f"{took:.1f} ms" if step.started_at else "-",
                bar + (f'<div class="muted">{esc(error)}</div>' if error else ""),
            )
        )
    return '<h2 id="steps">Steps</h2>' + table(
        ["step", "status", "attempt", "duration", "timeline"], rows, empty="No steps."
    )


def waits_table(waits: Sequence[Wait]) -> str:
    """The run's sleeps."""
    rows = [
        (
            f'<span class="mono">{esc(w.wait_id)}</span>',
            badge(w.status),
            esc(fmt_time(w.resume_at)),
            esc(fmt_time(w.completed_at)),
        )
        for w in waits
    ]
    return '<h2 id="waits">Waits</h2>' + table(
        ["wait id", "status", "resume at", "completed"], rows, empty="No waits."
    )


def hooks_table(hooks: Sequence[Hook]) -> str:
    """The run's hooks and webhooks."""
    rows = [
        (
            f'<span class="mono">{esc(h.hook_id)}</span>',
            f'<span class="mono">{esc(h.token)}</span>',
            badge(h.status),
            "yes" if h.is_webhook else "no",
            esc(fmt_time(h.created_at)),
        )
        for h in hooks
    ]
    return '<h2 id="hooks">Hooks</h2>' + table(
        ["hook id", "token", "status", "webhook", "created"], rows, empty="No hooks."
    )


def event_log(events: Sequence[Event]) -> str:
    """Every event in log order: offset from the first, type, correlation id, data."""
    start = events[0].created_at if events else None
    names = {
        e.correlation_id: short_name(str(e.data.get("step_name", "")))
        for e in events
        if e.event_type == "step_created" and e.correlation_id
    }
    rows = []
    for index, event in enumerate(events):
        offset = (event.created_at - start).total_seconds() * 1000 if start else 0.0
        correlation = event.correlation_id or ""
        label = names.get(correlation, "")
        data = (
            f"<details><summary>data</summary><pre>{esc(pretty_json(event.data))}</pre></details>"
            if event.data
            else '<span class="muted">{}</span>'
        )
        rows.append(
            (
                esc(index),
                f"{offset:.1f} ms",
                f'<span class="mono event-type">{esc(event.event_type)}</span>',
                f'<span class="mono">{esc(correlation or "-")}</span>'
                + (f' <span class="muted">{esc(label)}</span>' if label else ""),
                data,
            )
        )
    return '<h2 id="events">Event log</h2>' + table(
        ["#", "offset", "type", "correlation id", "data"], rows, empty="No events."
    )


def stream_label(run_id: str, name: str) -> str:
    """What a user called a stream: ``default``, the namespace given to
    ``get_writable(namespace)``, or the stored name when it is neither."""
    base = run_id.replace("wrun_", "strm_", 1) + "_user"
    if name == base:
        return "default"
    if not name.startswith(base + "_"):
        return name
    encoded = name[len(base) + 1 :]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except ValueError:
        return name


def streams_list(run_id: str, names: Sequence[str]) -> str:
    """Links to each stream of the run."""
    if not names:
        return '<h2 id="streams">Streams</h2><p class="empty">No streams.</p>'
    items = "".join(
        f'<li><a href="{esc(stream_href(run_id, n))}">{esc(stream_label(run_id, n))}</a> '
        f'<span class="mono muted">{esc(n)}</span></li>'
        for n in names
    )
    return f'<h2 id="streams">Streams</h2><ul>{items}</ul>'


def run_page(
    run: Run,
    *,
    steps: Sequence[Step],
    events: Sequence[Event],
    waits: Sequence[Wait],
    hooks: Sequence[Hook],
    streams: Sequence[str],
    now: datetime,
    refresh: bool,
) -> str:
    """``/runs/{run_id}``: header, step timeline, waits, hooks, streams, event log."""
    active = run.status in ACTIVE
    note = ""
    if active:
        note = (
            f'<p class="muted">Refreshing every {REFRESH_SECONDS} s. '
            f'<a href="{esc(run_href(run.run_id))}?refresh=0">stop refreshing</a></p>'
            if refresh
            else f'<p class="muted"><a href="{esc(run_href(run.run_id))}">auto-refresh</a></p>'
        )
    body = (
        _run_header(run, can_cancel=active)
        + note
        + step_timeline(run, steps, events, now)
        + waits_table(waits)
        + hooks_table(hooks)
        + streams_list(run.run_id, streams)
        + event_log(events)
    )
    return page(f"run {short_name(run.workflow_name)}", body, refresh=active and refresh)


# --- streams and errors ---------------------------------------------------------------


def stream_page(run: Run, name: str, chunks: Sequence[tuple[str, str]], closed: bool) -> str:
    """``/runs/{run_id}/streams/{name}``: each chunk as (kind, text), and whether it is closed."""
    rows = [(esc(i), esc(kind), f"<pre>{esc(text)}</pre>") for i, (kind, text) in enumerate(chunks)]
    state = badge("closed" if closed else "open")
    body = (
        f'<p><a href="{esc(run_href(run.run_id))}">← run {esc(run.run_id)}</a></p>'
        f"<h1>Stream {esc(stream_label(run.run_id, name))} "
        f'<span class="mono muted">{esc(name)}</span></h1>'
        f'<p class="stream-state">{state} · {len(chunks)} chunk(s)</p>'
        + table(["#", "kind", "chunk"], rows, empty="No chunks yet.")
    )
    return page(f"stream {name}", body, refresh=not closed and run.status in ACTIVE)


def message_page(title: str, message: str) -> str:
    """A small page for 404s and bad requests."""
    return page(title, f"<h1>{esc(title)}</h1><p>{esc(message)}</p>")
