"""The run page (``/runs/{run_id}``) and a stream's page: pure functions from what
``queries`` read to markup."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from wfkit.runtime.tools.hook_payloads import schema_of
from wfkit.runtime.tools.tables import short_name
from wfkit.runtime.tools.web.markup import (
    ACTIVE,
    badge,
    csrf_field,
    error_block,
    esc,
    fmt_duration,
    fmt_time,
    pretty_json,
    run_href,
    run_link,
    stream_href,
    table,
)
from wfkit.runtime.tools.web.queries import RunView
from wfkit.runtime.tools.web.timeline import ScaleName, build_waterfall
from wfkit.runtime.tools.web.timeline_html import waterfall_section
from wfkit.worlds.base import Event, Hook, Run, Wait


@dataclass
class RunPageState:
    """What the page says beyond the records: a notice after an action, a rejected
    hook payload (kept, with its problems), the chosen scale."""

    csrf_token: str = ""
    """The server's CSRF token, sent back by every form (``security``)."""
    scale: ScaleName = "compressed"
    notice: str = ""
    notice_bad: bool = False
    rejected: dict[str, tuple[str, Sequence[str]]] = field(default_factory=dict)
    """hook id → (the text typed, what is wrong with it)."""


def hook_action(run_id: str, hook_id: str) -> str:
    """Where a hook's resume form posts."""
    return f"{run_href(run_id)}/hooks/{quote(hook_id, safe='')}/resume"


def _header(view: RunView, state: RunPageState) -> str:
    run = view.run
    end = run.completed_at or (view.now if run.status in ACTIVE else None)
    meta = [
        (
            "workflow",
            f'<a href="/?workflow={esc(quote(run.workflow_name, safe=""))}" title="{esc(run.workflow_name)}">'
            f'{esc(short_name(run.workflow_name))}</a> <span class="muted mono">{esc(run.workflow_name)}</span>',
        ),
        ("status", badge(run.status)),
        ("created", esc(fmt_time(run.created_at))),
        ("started", esc(fmt_time(run.started_at))),
        ("completed", esc(fmt_time(run.completed_at))),
        ("duration", esc(fmt_duration(run.started_at or run.created_at, end))),
    ]
    if run.deployment_id:
        meta.append(("deployment", esc(run.deployment_id)))
    meta.append(
        ("parent run", run_link(view.parent) if view.parent else '<span class="muted">none</span>')
    )
    if view.children:
        meta.append(
            (
                "child runs",
                " ".join(
                    f"{run_link(child_id)} {badge(child.status)} "
                    f'<span class="muted">{esc(short_name(child.workflow_name))}</span><br>'
                    for child_id, child in view.children.items()
                ),
            )
        )
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)
    parts = [f'<h1>Run <span class="mono">{esc(run.run_id)}</span></h1>']
    if state.notice:
        parts.append(
            f'<div class="notice{" bad" if state.notice_bad else ""}">{esc(state.notice)}</div>'
        )
    parts.append(f'<dl class="meta">{dl}</dl>')
    waiting = _waiting_callout(view)
    if waiting:
        parts.append(waiting)
    parts.append(_actions(run, state))
    if run.error:
        parts.append('<h2 id="error">Error</h2>' + error_block(run.error, open_stack=True))
    return "".join(parts)


def _waiting_callout(view: RunView) -> str:
    if view.run.status not in ACTIVE:
        return ""
    items = [
        f'waiting for {"webhook" if h.is_webhook else "hook"} <span class="mono">{esc(h.token)}</span> '
        f'(<a href="#hooks">resume it below</a>)'
        for h in view.hooks
        if h.status == "active"
    ]
    items += [
        f"sleeping until {esc(fmt_time(w.resume_at))}" for w in view.waits if w.status == "waiting"
    ]
    if not items:
        return ""
    return '<div class="waiting">' + "<br>".join(items) + "</div>"


def _actions(run: Run, state: RunPageState) -> str:
    buttons = []
    if run.status in ACTIVE:
        buttons.append(
            f'<form method="post" action="{esc(run_href(run.run_id))}/cancel">'
            f"{csrf_field(state.csrf_token)}"
            '<button class="cancel" type="submit">Cancel run</button></form>'
        )
    if run.status == "failed":
        buttons.append(
            f'<form method="post" action="{esc(run_href(run.run_id))}/retry">'
            f"{csrf_field(state.csrf_token)}"
            '<button class="retry" type="submit" title="Replay the run\'s log on the code the '
            'workers run now, past the failure">Retry run</button></form>'
        )
    return f'<div class="actions">{"".join(buttons)}</div>' if buttons else ""


def _resume_form(run: Run, hook: Hook, state: RunPageState) -> str:
    typed, problems = state.rejected.get(hook.hook_id, ("", ()))
    schema = schema_of(hook.metadata)
    hint = (
        '<div class="muted small">checked against the JSON Schema in the hook\'s metadata</div>'
        if schema is not None
        else '<div class="muted small">any JSON value</div>'
    )
    return (
        f'<form class="resume" method="post" action="{esc(hook_action(run.run_id, hook.hook_id))}">'
        f"{csrf_field(state.csrf_token)}"
        f'<textarea name="payload" spellcheck="false" placeholder="{{&quot;approved&quot;: true}}">{esc(typed) if typed else ""}</textarea>'
        f'<div class="form-error">{esc(chr(10).join(problems))}</div>{hint}'
        '<button class="primary" type="submit">Resume hook</button></form>'
    )


def hooks_section(run: Run, hooks: Sequence[Hook], state: RunPageState) -> str:
    """The run's hooks; each live one (not a webhook) with a form to deliver a payload."""
    rows = []
    for hook in hooks:
        action = ""
        if hook.status == "active" and run.status in ACTIVE:
            action = (
                '<span class="muted">resumed by an HTTP request to its webhook URL</span>'
                if hook.is_webhook
                else _resume_form(run, hook, state)
            )
        rows.append(
            (
                f'<span class="mono">{esc(hook.token)}</span><br><span class="muted mono small">{esc(hook.hook_id)}</span>',
                badge(hook.status),
                "webhook" if hook.is_webhook else "hook",
                esc(fmt_time(hook.created_at)),
                action,
            )
        )
    return '<h2 id="hooks">Hooks</h2>' + table(
        ["token", "status", "kind", "created", "resume"], rows, empty="No hooks."
    )


def waits_section(waits: Sequence[Wait]) -> str:
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
    return '<h2 id="waits">Sleeps</h2>' + table(
        ["wait id", "status", "resume at", "completed"], rows, empty="No sleeps."
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


def streams_section(run_id: str, names: Sequence[str]) -> str:
    """Links to each stream of the run."""
    if not names:
        return '<h2 id="streams">Streams</h2><p class="empty">No streams.</p>'
    items = "".join(
        f'<li><a href="{esc(stream_href(run_id, n))}">{esc(stream_label(run_id, n))}</a> '
        f'<span class="mono muted">{esc(n)}</span></li>'
        for n in names
    )
    return f'<h2 id="streams">Streams</h2><ul>{items}</ul>'


def run_body(view: RunView, state: RunPageState) -> str:
    """The run page's ``<main>``: header and actions, timeline, hooks, sleeps, input and
    output, streams, event log."""
    run = view.run
    statuses = {h.hook_id: h.status for h in view.hooks}
    waterfall = build_waterfall(run, view.events, view.children, view.now, statuses)
    io = f'<h2 id="input">Input</h2><pre>{esc(pretty_json(run.input))}</pre>'
    if run.status == "completed":
        io += f'<h2 id="output">Output</h2><pre>{esc(pretty_json(run.output))}</pre>'
    return (
        _header(view, state)
        + waterfall_section(run, waterfall, state.scale)
        + hooks_section(run, view.hooks, state)
        + waits_section(view.waits)
        + io
        + streams_section(run.run_id, view.streams)
        + event_log(view.events)
    )


def stream_body(run: Run, name: str, chunks: Sequence[tuple[str, str]], closed: bool) -> str:
    """A stream's ``<main>``: each chunk as (kind, text), and whether it is closed."""
    rows = [(esc(i), esc(kind), f"<pre>{esc(text)}</pre>") for i, (kind, text) in enumerate(chunks)]
    return (
        f'<p><a href="{esc(run_href(run.run_id))}">← run {esc(run.run_id)}</a></p>'
        f"<h1>Stream {esc(stream_label(run.run_id, name))} "
        f'<span class="mono muted">{esc(name)}</span></h1>'
        f'<p class="stream-state">{badge("closed" if closed else "open")} · {len(chunks)} chunk(s)</p>'
        + table(["#", "kind", "chunk"], rows, empty="No chunks yet.")
    )
