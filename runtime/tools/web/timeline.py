"""A run's waterfall: lanes of timed segments read from its event log, and the time scale.

Pure functions from records and events to data; ``timeline_html`` draws them. One lane
per step (each attempt a segment, the wait before it and the back-off between attempts
too), sleep, hook and child run, all on the run's time axis.

The scale. A linear axis is honest but useless when a run spends 110 s waiting for a
hook and 5 ms per step: the steps become hair-thin ticks. The default scale is
*compressed*: the times where anything starts or ends cut the axis into intervals, and
each interval's width grows with the logarithm of its length, so a 5 ms step and a
110 s hook are both readable, every bar keeps its order and overlaps, and a longer
interval is always wider. Bars are labelled with their real durations and the axis
ticks with real offsets. A linear scale is one click away. Alternatives rejected: a
minimum bar width alone (the hook still squeezes every step into the same sliver) and
a logarithmic axis from the run's start (it distorts late bars far more than early ones
and gives nothing a width at zero).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, assert_never

from wfkit.runtime.tools.tables import short_name
from wfkit.worlds.base import Event, Run

START_STEP_ID = "step//wfkit//start"
"""The built-in step behind ``await start(child)`` in a workflow (api/builtin_steps.py)."""

LaneKind = Literal["step", "sleep", "hook", "child"]
SegmentKind = Literal[
    "queued",  # created, waiting to start (or for its worker)
    "attempt-ok",  # the attempt that completed
    "attempt-failed",  # an attempt that raised (retried, or the final failure)
    "attempt-running",  # an attempt still running
    "backoff",  # between a failed attempt and the next
    "sleep",
    "hook",  # a hook waiting for a payload
    "hook-listening",  # a live hook that has received a payload and may take more
    "child",  # a child run, from its creation to its end
    "ended",  # cut short by the run's end (cancelled, failed)
]
ScaleName = Literal["compressed", "linear"]

_RUN_ENDS = frozenset({"run_completed", "run_failed", "run_cancelled"})


@dataclass(frozen=True)
class Segment:
    """One drawn piece of a lane, from ``start`` to ``end``."""

    kind: SegmentKind
    start: datetime
    end: datetime
    label: str


@dataclass(frozen=True)
class Attempt:
    """One step attempt: when it ran, how it ended and the error it raised, if any."""

    number: int
    started_at: datetime
    ended_at: datetime | None
    outcome: Literal["completed", "failed", "retried", "running", "interrupted"]
    error: Mapping[str, object] | None = None
    retry_at: str | None = None


@dataclass
class Lane:
    """One row of the waterfall: a step, a sleep, a hook or a child run."""

    lane_id: str
    kind: LaneKind
    title: str
    name: str
    status: str
    start: datetime
    end: datetime | None = None
    segments: list[Segment] = field(default_factory=list)
    marks: list[tuple[datetime, str]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    child_run_id: str | None = None
    detail: dict[str, object] = field(default_factory=dict)
    """What the lane's payload panel shows: input, output, token, resume time..."""
    _open_since: datetime | None = None
    _open_kind: SegmentKind = "queued"


@dataclass(frozen=True)
class Waterfall:
    """Every lane of a run, with the times the axis spans."""

    start: datetime
    end: datetime
    lanes: list[Lane]


def child_run_id(step_id: str) -> str:
    """The run a built-in ``start`` step creates: its id is derived from the step's
    (``step_X`` starts ``wrun_X``), so a retried step starts no second child."""
    return "wrun_" + step_id.removeprefix("step_")


def build_waterfall(
    run: Run,
    events: Sequence[Event],
    children: Mapping[str, Run],
    now: datetime,
    hook_statuses: Mapping[str, str] | None = None,
) -> Waterfall:
    """Lanes for every step, sleep, hook and child run of ``run``, in order of start.

    Args:
        run: the run record.
        events: its whole event log, in order.
        children: child run records by run id (those that exist).
        now: the time that open segments of a live run are drawn to.
        hook_statuses: hook id → status from the hook records (a run's end disposes its
            hooks without an event).
    """
    run_end = run.completed_at if run.status in ("completed", "failed", "cancelled") else None
    horizon = run_end or now
    lanes: dict[str, Lane] = {}
    for event in events:
        if event.event_type in _RUN_ENDS:
            run_end = run_end or event.created_at
        elif event.event_type == "run_retried":
            run_end = None  # the failure before it was not the run's end
        if event.correlation_id is not None:
            _apply(lanes, event)
    ordered = sorted(lanes.values(), key=lambda lane: (lane.start, lane.lane_id))
    for lane in ordered:
        _close_open(lane, horizon, ended_by_run=run_end is not None)
        if lane.kind == "hook" and hook_statuses and lane.lane_id in hook_statuses:
            lane.status = hook_statuses[lane.lane_id]
    out: list[Lane] = []
    for lane in ordered:
        out.append(lane)
        if lane.child_run_id is not None:
            out.append(_child_lane(lane, children.get(lane.child_run_id), horizon))
    start = min([run.created_at, *(e.created_at for e in events[:1])])
    ends = [horizon, *(s.end for lane in out for s in lane.segments)]
    return Waterfall(start=start, end=max(ends), lanes=out)


def _apply(lanes: dict[str, Lane], event: Event) -> None:
    """Fold one correlated event into its lane (creating it on ``*_created``)."""
    key = event.correlation_id or ""
    at, data, kind = event.created_at, event.data, event.event_type
    lane = lanes.get(key)
    if kind == "step_created":
        name = str(data.get("step_name", ""))
        lanes[key] = Lane(key, "step", name, short_name(name), "pending", at)
        lanes[key].detail["input"] = data.get("input")
        lanes[key]._open_since = at
        if name == START_STEP_ID:
            lanes[key].child_run_id = child_run_id(key)
            lanes[key].name = "start " + _child_workflow_name(data.get("input"))
        return
    if kind == "wait_created":
        resume_at = str(data.get("resume_at", ""))
        lanes[key] = Lane(key, "sleep", "sleep", "sleep", "waiting", at, _open_kind="sleep")
        lanes[key].detail["resume_at"] = resume_at
        lanes[key]._open_since = at
        return
    if kind in ("hook_created", "hook_conflict"):
        token = str(data.get("token", ""))
        webhook = bool(data.get("is_webhook"))
        title = "webhook" if webhook else "hook"
        lane = Lane(key, "hook", title, token, "active", at, _open_kind="hook")
        lane.detail.update(token=token, metadata=data.get("metadata"), payloads=[])
        if kind == "hook_conflict":
            lane.status, lane.end = "conflicted", at
            lane.detail["conflicting_run_id"] = data.get("conflicting_run_id")
        else:
            lane._open_since = at
        lanes[key] = lane
        return
    if lane is None:  # an event of an entity whose creation is not in this log
        return
    _advance(lane, event)


def _advance(lane: Lane, event: Event) -> None:
    """Apply a non-creating event to an existing lane."""
    at, data, kind = event.created_at, event.data, event.event_type
    match kind:
        case "step_started":
            _close(lane, at)
            lane.status = "running"
            lane.attempts.append(Attempt(len(lane.attempts) + 1, at, None, "running"))
            lane._open_since, lane._open_kind = at, "attempt-running"
        case "step_completed":
            _end_attempt(lane, at, "completed", None, None)
            lane.status, lane.end = "completed", at
            lane.detail["output"] = data.get("result")
        case "step_failed":
            _end_attempt(lane, at, "failed", data.get("error"), None)
            lane.status, lane.end = "failed", at
            lane.detail["error"] = data.get("error")
        case "step_retrying":
            retry_at = str(data["retry_after"]) if data.get("retry_after") else None
            _end_attempt(lane, at, "retried", data.get("error"), retry_at)
            lane.status = "retrying"
            lane._open_since, lane._open_kind = at, "backoff"
        case "wait_completed":
            _close(lane, at)
            lane.status, lane.end = "completed", at
        case "hook_received":
            _close(lane, at)
            lane._open_since, lane._open_kind = at, "hook-listening"
            lane.marks.append((at, "payload received"))
            payloads = lane.detail.setdefault("payloads", [])
            if isinstance(payloads, list):
                payloads.append(data.get("payload"))
        case "hook_disposed":
            _close(lane, at)
            lane.status, lane.end = "disposed", at
        case (
            "run_created"
            | "run_started"
            | "run_completed"
            | "run_failed"
            | "run_cancelled"
            | "run_retried"
            | "patch_marked"
            | "step_created"
            | "wait_created"
            | "hook_created"
            | "hook_conflict"
        ):
            pass  # creations are handled by _apply; run events carry no correlation id
        case _:
            assert_never(kind)


def _end_attempt(
    lane: Lane,
    at: datetime,
    outcome: Literal["completed", "failed", "retried"],
    error: object,
    retry_at: str | None,
) -> None:
    """Close the running attempt with ``outcome`` (and its error, if it raised)."""
    if lane.attempts and lane.attempts[-1].ended_at is None:
        last = lane.attempts[-1]
        info = error if isinstance(error, Mapping) else None
        lane.attempts[-1] = Attempt(last.number, last.started_at, at, outcome, info, retry_at)
    lane._open_kind = "attempt-ok" if outcome == "completed" else "attempt-failed"
    _close(lane, at)


def _close(lane: Lane, at: datetime) -> None:
    """End the lane's open segment at ``at``."""
    if lane._open_since is not None:
        lane.segments.append(Segment(lane._open_kind, lane._open_since, at, ""))
        lane._open_since = None


def _close_open(lane: Lane, horizon: datetime, *, ended_by_run: bool) -> None:
    """Draw what is still open to ``horizon``: to now for a live run, or to the run's end
    (marked as cut short) when the run ended first."""
    if lane._open_since is None:
        return
    if ended_by_run and lane._open_kind == "hook-listening":
        lane.end = lane._open_since  # its wait ended with its last payload
    elif ended_by_run:
        if lane.attempts and lane.attempts[-1].ended_at is None:
            last = lane.attempts[-1]
            lane.attempts[-1] = Attempt(last.number, last.started_at, horizon, "interrupted")
        lane.segments.append(Segment(lane._open_kind, lane._open_since, horizon, ""))
        lane.segments.append(Segment("ended", horizon, horizon, "ended with the run"))
        lane.end = horizon
    else:
        lane.segments.append(Segment(lane._open_kind, lane._open_since, horizon, "still open"))
    lane._open_since = None


def _child_workflow_name(call_input: object) -> str:
    """The child's workflow name from a ``start`` step's input (``args[0]`` is its id)."""
    args = call_input.get("args") if isinstance(call_input, Mapping) else None
    if isinstance(args, list) and args and isinstance(args[0], str):
        return short_name(args[0])
    return "child"


def _child_lane(parent_step: Lane, child: Run | None, horizon: datetime) -> Lane:
    """The lane of the child run a built-in ``start`` step created."""
    run_id = parent_step.child_run_id or ""
    if child is None:
        lane = Lane(f"child-{run_id}", "child", "child run", run_id, "unknown", parent_step.start)
        lane.child_run_id = run_id
        return lane
    end = child.completed_at or horizon
    lane = Lane(
        f"child-{run_id}",
        "child",
        child.workflow_name,
        short_name(child.workflow_name),
        child.status,
        child.created_at,
        end=child.completed_at,
        segments=[Segment("child", child.created_at, max(end, child.created_at), "")],
    )
    lane.child_run_id = run_id
    return lane


# --- the scale ------------------------------------------------------------------------

_COMPRESSION_UNIT_SECONDS = 0.001
"""Intervals are weighted by log(1 + length / unit): a millisecond is where lengths start
to count, so a 5 ms step gets a width of its own next to minutes of waiting."""


class TimeScale:
    """Maps a time to a position in percent of the track (monotone, 0 at ``start``)."""

    def __init__(self, start: datetime, end: datetime, marks: Iterable[datetime], name: ScaleName):
        self.name = name
        self.start = start
        self.end = max(end, start)
        times = sorted({start, self.end, *(t for t in marks if start <= t <= self.end)})
        self._times = [(t - start).total_seconds() for t in times]
        weights = [0.0]
        for before, after in zip(self._times, self._times[1:], strict=False):
            length = after - before
            if name == "compressed":
                length = math.log1p(length / _COMPRESSION_UNIT_SECONDS)
            weights.append(weights[-1] + length)
        self._weights = weights
        self._total = weights[-1] or 1.0

    def percent(self, at: datetime) -> float:
        """Where ``at`` falls on the track, from 0 to 100."""
        offset = (at - self.start).total_seconds()
        times, weights = self._times, self._weights
        if offset <= times[0]:
            return 0.0
        if offset >= times[-1]:
            return 100.0 if weights[-1] else 0.0
        i = bisect.bisect_right(times, offset) - 1
        span = times[i + 1] - times[i]
        share = (offset - times[i]) / span if span else 0.0
        return (weights[i] + share * (weights[i + 1] - weights[i])) / self._total * 100

    def ticks(self, min_gap_percent: float = 9.0) -> list[tuple[float, float]]:
        """Axis ticks as (percent, seconds from start), spaced at least ``min_gap_percent``."""
        if self.name == "linear":
            total = self._times[-1]
            step = _nice_step(total / 8) if total > 0 else 1.0
            count = int(total / step) if total > 0 else 0
            return [(i * step / total * 100 if total else 0.0, i * step) for i in range(count + 1)]
        ticks: list[tuple[float, float]] = []
        for seconds, weight in zip(self._times, self._weights, strict=True):
            at = weight / self._total * 100
            if not ticks or at - ticks[-1][0] >= min_gap_percent:
                ticks.append((at, seconds))
        return ticks


def _nice_step(raw: float) -> float:
    """The 1-2-5 step nearest above ``raw`` (axis ticks of the linear scale)."""
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return float(factor * magnitude)
    return 10.0 * magnitude


def scale_for(waterfall: Waterfall, name: ScaleName) -> TimeScale:
    """The scale that places every segment and mark of ``waterfall``."""
    marks: list[datetime] = []
    for lane in waterfall.lanes:
        marks.append(lane.start)
        marks += [t for s in lane.segments for t in (s.start, s.end)]
        marks += [t for t, _ in lane.marks]
    return TimeScale(waterfall.start, waterfall.end, marks, name)


def format_seconds(seconds: float) -> str:
    """A duration for people: ``4.2 ms``, ``1.30 s``, ``2 m 05 s``, ``3 h 10 m``."""
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} m"
    return f"{hours // 24} d {hours % 24} h"
