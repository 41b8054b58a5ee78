"""Readable views of a world's records: tables for the CLI and a run's event timeline."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wfkit.runtime.serialization.at_rest import reveal
from wfkit.worlds.base import CorruptedLogError, Event, Hook, Run, Step, Wait, World


@dataclass(frozen=True)
class CorruptedEvent:
    """A stored event that does not decode, in its place in a run's log (for display)."""

    event_id: str
    sequence: int | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": "corrupted",
            "sequence": self.sequence,
            "reason": self.reason,
        }


def read_events(world: World, run_id: str) -> list[Event | CorruptedEvent]:
    """A run's events in log order, each stored row that does not decode shown as a
    ``CorruptedEvent`` in its place, so an inspector shows the whole log around it.

    Raises:
        RunNotFoundError / WorldError: as ``world.events.list``.
    """
    read: list[Event | CorruptedEvent] = []
    after: str | None = None
    while True:
        try:
            read.extend(world.events.list(run_id, after_event_id=after))
            return read
        except CorruptedLogError as exc:
            if exc.event_id is None:
                raise
            read.extend(exc.read_before)
            read.append(CorruptedEvent(exc.event_id, exc.sequence, exc.reason))
            after = exc.event_id


def short_name(identifier: str) -> str:
    """``step//./examples/orders//charge_card`` → ``charge_card``."""
    return identifier.rsplit("//", 1)[-1] if "//" in identifier else identifier


def _fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value else "-"


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table with a header row; values are str()-ed and truncated at 60 chars."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)
    ]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return _fmt_time(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def run_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": r.run_id,
            "workflow": short_name(r.workflow_name),
            "status": r.status,
            "created": r.created_at,
            "completed": r.completed_at,
        }
        for r in runs
    ]


def step_rows(steps: Iterable[Step]) -> list[dict[str, Any]]:
    return [
        {
            "step_id": s.step_id,
            "step": short_name(s.step_name),
            "status": s.status,
            "attempt": s.attempt,
            "started": s.started_at,
            "completed": s.completed_at,
            "error": (reveal(s.error) or {}).get("message"),
        }
        for s in steps
    ]


def hook_rows(hooks: Iterable[Hook]) -> list[dict[str, Any]]:
    return [
        {
            "hook_id": h.hook_id,
            "run_id": h.run_id,
            "token": h.token,
            "status": h.status,
            "webhook": h.is_webhook,
            "created": h.created_at,
        }
        for h in hooks
    ]


def wait_rows(waits: Iterable[Wait]) -> list[dict[str, Any]]:
    return [
        {
            "wait_id": w.wait_id,
            "run_id": w.run_id,
            "status": w.status,
            "resume_at": w.resume_at,
            "completed": w.completed_at,
        }
        for w in waits
    ]


def event_rows(events: Iterable[Event | CorruptedEvent]) -> list[dict[str, Any]]:
    return [
        {
            "event_id": e.event_id,
            "type": e.event_type,
            "correlation_id": e.correlation_id,
            "created": e.created_at,
        }
        if isinstance(e, Event)
        else {"event_id": e.event_id, "type": "CORRUPTED", "correlation_id": e.reason}
        for e in events
    ]


def _summary(event: Event, names: Mapping[str, str]) -> str:
    data = event.data
    kind = event.event_type
    if kind == "run_created":
        return short_name(str(data.get("workflow_name", "")))
    if kind == "run_failed":
        error = reveal(data.get("error")) or {}
        return f"{error.get('type', '')}: {error.get('message', '')}"
    if kind.startswith("step_"):
        name = names.get(event.correlation_id or "", "")
        if kind in ("step_retrying", "step_failed"):
            error = reveal(data.get("error")) or {}
            extra = f" retry at {data['retry_after']}" if data.get("retry_after") else ""
            return f"{name}: {error.get('message', '')}{extra}"
        return name
    if kind == "wait_created":
        return f"until {data.get('resume_at', '')}"
    if kind in ("hook_created", "hook_conflict"):
        return f"token {data.get('token', '')}"
    return ""


def format_timeline(events: Sequence[Event | CorruptedEvent]) -> str:
    """A run's events as a timeline: offset from the first event, type, what it concerns;
    a row that does not decode is shown as ``CORRUPTED`` with what is wrong with it."""
    decoded = [e for e in events if isinstance(e, Event)]
    if not events:
        return "(no events)"
    start = decoded[0].created_at if decoded else None
    names = {
        e.correlation_id: short_name(str(e.data.get("step_name", "")))
        for e in decoded
        if e.event_type == "step_created" and e.correlation_id
    }
    lines = []
    for event in events:
        if isinstance(event, CorruptedEvent):
            at = "" if event.sequence is None else f" (sequence {event.sequence})"
            lines.append(f"{'?':>10}     {'CORRUPTED':<15} {event.event_id}{at}: {event.reason}")
            continue
        assert start is not None
        offset = (event.created_at - start).total_seconds() * 1000
        summary = _summary(event, names)
        lines.append(f"{offset:>10.1f} ms  {event.event_type:<15} {summary}".rstrip())
    return "\n".join(lines)


def timeline(world: World, run_id: str) -> str:
    """The event timeline of one run, read from ``world`` (corrupted rows shown as such)."""
    return format_timeline(read_events(world, run_id))
