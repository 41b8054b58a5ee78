"""The waterfall's markup: an axis, a row for the run and one ``<details>`` per lane.

Each lane's row is the ``<summary>`` of its ``<details>``, so clicking a bar opens the
lane's payloads (input, output, each attempt with its error, hook payloads) in place,
with no script. Bars are absolutely placed spans inside a track, at percentages from
:class:`TimeScale`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote

from wfkit.runtime.tools.web.markup import (
    badge,
    error_block,
    esc,
    fmt_duration,
    fmt_time,
    pretty_json,
    run_link,
    table,
)
from wfkit.runtime.tools.web.timeline import (
    Lane,
    ScaleName,
    Segment,
    TimeScale,
    Waterfall,
    format_seconds,
    scale_for,
)
from wfkit.worlds.base import Run

_LEGEND = (
    ("queued", "queued"),
    ("attempt-ok", "attempt"),
    ("attempt-failed", "failed attempt"),
    ("backoff", "retry back-off"),
    ("attempt-running", "running"),
    ("sleep", "sleep"),
    ("hook", "hook wait"),
    ("child", "child run"),
)
_DUR_LEFT_LIMIT = 82.0
"""Past this position a bar's duration label goes on its left, so it stays on screen."""


def lane_anchor(lane: Lane) -> str:
    """The element id of a lane's ``<details>`` (links and live updates keep it open)."""
    return "lane-" + lane.lane_id


def _bar(segment: Segment, scale: TimeScale, title: str) -> str:
    left = scale.percent(segment.start)
    width = max(0.0, scale.percent(segment.end) - left)
    label = title + (f" · {segment.label}" if segment.label else "")
    return (
        f'<span class="seg seg-{esc(segment.kind)}" style="left:{left:.3f}%;width:{width:.3f}%" '
        f'title="{esc(label)}"></span>'
    )


def _duration_label(start: datetime, end: datetime, scale: TimeScale, text: str) -> str:
    left, right = scale.percent(start), scale.percent(end)
    if right < _DUR_LEFT_LIMIT:
        return f'<span class="dur" style="left:calc({right:.3f}% + 8px)">{esc(text)}</span>'
    return f'<span class="dur" style="right:calc({100 - left:.3f}% + 8px)">{esc(text)}</span>'


def _segment_title(lane: Lane, segment: Segment) -> str:
    took = format_seconds((segment.end - segment.start).total_seconds())
    names = {
        "queued": "queued",
        "attempt-ok": "attempt",
        "attempt-failed": "failed attempt",
        "attempt-running": "running",
        "backoff": "back-off before the next attempt",
        "sleep": "sleeping",
        "hook": "waiting for a payload",
        "hook-listening": "listening for more payloads",
        "child": "child run",
        "ended": "ended with the run",
    }
    return f"{lane.name}: {names[segment.kind]} {took} ({fmt_time(segment.start)} → {fmt_time(segment.end)})"


def _track(lane: Lane, scale: TimeScale) -> str:
    parts = [_bar(s, scale, _segment_title(lane, s)) for s in lane.segments]
    parts += [
        f'<span class="mark" style="left:{scale.percent(at):.3f}%" '
        f'title="{esc(label)} at {esc(fmt_time(at))}"></span>'
        for at, label in lane.marks
    ]
    if lane.segments:
        first = min(s.start for s in lane.segments)
        last = max(s.end for s in lane.segments)
        live = lane.end is None and lane.status not in ("completed", "failed", "disposed")
        text = format_seconds((last - first).total_seconds()) + ("…" if live else "")
        if lane.kind == "step" and len(lane.attempts) > 1:
            text += f" · {len(lane.attempts)} attempts"
        parts.append(_duration_label(first, last, scale, text))
    return f'<span class="wf-track">{"".join(parts)}</span>'


def _label(lane: Lane) -> str:
    name = esc(lane.name)
    if lane.kind == "child" and lane.child_run_id:
        name = f"{esc(lane.name)} <span class='muted mono small'>{esc(lane.child_run_id)}</span>"
    return (
        f'<span class="wf-label" title="{esc(lane.title)}"><span class="kind">{esc(lane.kind)}</span>'
        f"{badge(lane.status)} {name}</span>"
    )


def _payload(title: str, value: object) -> str:
    return f"<h3>{esc(title)}</h3><pre>{esc(pretty_json(value))}</pre>"


def _attempts_table(lane: Lane) -> str:
    rows = []
    for attempt in lane.attempts:
        error = error_block(attempt.error) if attempt.error else ""
        retry = (
            f'<div class="muted small">retry at {esc(attempt.retry_at)}</div>'
            if attempt.retry_at
            else ""
        )
        rows.append(
            (
                esc(attempt.number),
                badge(attempt.outcome),
                esc(fmt_time(attempt.started_at)),
                esc(fmt_duration(attempt.started_at, attempt.ended_at)),
                error + retry,
            )
        )
    return "<h3>Attempts</h3>" + table(
        ["#", "outcome", "started", "took", "error"], rows, empty="Not started yet."
    )


def _lane_detail(lane: Lane) -> str:
    detail: Mapping[str, object] = lane.detail
    parts = [f'<div class="muted small mono">{esc(lane.title)} · {esc(lane.lane_id)}</div>']
    if lane.kind == "step":
        parts.append(_payload("Input", detail.get("input")))
        parts.append(_attempts_table(lane))
        if "output" in detail:
            parts.append(_payload("Output", detail.get("output")))
        final = detail.get("error")
        if isinstance(final, Mapping):
            parts.append(error_block(final, heading="final error", open_stack=True))
    elif lane.kind == "sleep":
        parts.append(f"<p>resume at {esc(detail.get('resume_at'))}</p>")
    elif lane.kind == "hook":
        parts.append(f'<p>token <span class="mono">{esc(detail.get("token"))}</span></p>')
        if detail.get("metadata") is not None:
            parts.append(_payload("Metadata", detail.get("metadata")))
        payloads = detail.get("payloads")
        for index, value in enumerate(payloads if isinstance(payloads, list) else []):
            parts.append(_payload(f"Payload {index + 1}", value))
        if detail.get("conflicting_run_id"):
            parts.append(f"<p>token held by run {run_link(str(detail['conflicting_run_id']))}</p>")
    elif lane.kind == "child" and lane.child_run_id:
        parts.append(f"<p>child run {run_link(lane.child_run_id)}</p>")
    return f'<div class="lane-detail">{"".join(parts)}</div>'


def _axis(scale: TimeScale, run: Run, waterfall: Waterfall, scale_links: str) -> str:
    ticks = "".join(
        f'<span class="tick" style="left:{at:.3f}%">+{esc(format_seconds(seconds))}</span>'
        for at, seconds in scale.ticks()
        if at < 94
    )
    axis = f'<div class="wf-row wf-axis"><span>{scale_links}</span><span class="wf-track">{ticks}</span></div>'
    run_segment = Segment("child", waterfall.start, waterfall.end, "")
    total = format_seconds((waterfall.end - waterfall.start).total_seconds())
    bar = (
        f'<span class="seg seg-run" style="left:0%;width:100%" '
        f'title="run {esc(fmt_time(run_segment.start))} → {esc(fmt_time(run_segment.end))}"></span>'
    )
    row = (
        f'<div class="wf-row"><span class="wf-label"><span class="kind">run</span>{badge(run.status)} '
        f'{esc(total)}</span><span class="wf-track">{bar}</span></div>'
    )
    return axis + row


def waterfall_section(run: Run, waterfall: Waterfall, scale_name: ScaleName) -> str:
    """``<h2 id="timeline">``: the legend, the axis and every lane of the run."""
    scale = scale_for(waterfall, scale_name)
    base = "/runs/" + quote(run.run_id, safe="")
    other: ScaleName = "linear" if scale_name == "compressed" else "compressed"
    href = base + ("?scale=linear" if other == "linear" else "") + "#timeline"
    scale_links = f'<span class="small">{esc(scale_name)} scale · <a href="{esc(href)}">{esc(other)}</a></span>'
    legend = "".join(
        f'<span><span class="seg seg-{kind}"></span>{esc(text)}</span>' for kind, text in _LEGEND
    )
    lanes = "".join(
        f'<details class="lane lane-{esc(lane.kind)}" id="{esc(lane_anchor(lane))}">'
        f"<summary>{_label(lane)}{_track(lane, scale)}</summary>{_lane_detail(lane)}</details>"
        for lane in waterfall.lanes
    )
    note = (
        '<p class="muted small">Widths grow with the logarithm of each interval, so short steps '
        "stay visible beside long waits; labels and ticks show real times. Click a row for its payloads.</p>"
        if scale_name == "compressed"
        else '<p class="muted small">Widths are proportional to time. Click a row for its payloads.</p>'
    )
    empty = "" if waterfall.lanes else '<p class="empty">No steps, sleeps or hooks yet.</p>'
    return (
        f'<h2 id="timeline">Timeline</h2><div class="legend">{legend}</div>'
        f'<div class="waterfall">{_axis(scale, run, waterfall, scale_links)}{lanes}</div>{empty}{note}'
    )
