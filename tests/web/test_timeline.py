"""The waterfall's data and scale on hand-built event logs (pure: no world, no server)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from wfkit.runtime.tools.web.timeline import (
    START_STEP_ID,
    TimeScale,
    Waterfall,
    build_waterfall,
    format_seconds,
    scale_for,
)
from wfkit.runtime.tools.web.timeline_html import waterfall_section
from wfkit.worlds.base import Event, Run

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RUN_ID = "wrun_01KTESTTESTTESTTESTTESTTES"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def log(*entries: tuple[float, str, str | None, dict[str, Any]]) -> list[Event]:
    return [
        Event(
            event_id=f"evnt_{index:026d}",
            run_id=RUN_ID,
            event_type=kind,  # type: ignore[arg-type]
            correlation_id=correlation,
            data=data,
            created_at=at(seconds),
        )
        for index, (seconds, kind, correlation, data) in enumerate(entries)
    ]


def run_record(status: str, ended: float | None) -> Run:
    return Run(
        run_id=RUN_ID,
        workflow_name="workflow//./app//approve",
        status=status,  # type: ignore[arg-type]
        created_at=T0,
        updated_at=at(ended or 0),
        started_at=at(0.005),
        completed_at=at(ended) if ended is not None else None,
    )


STEP = {"step_name": "step//./app//charge", "input": {"args": [], "kwargs": {}}}
ERROR = {"type": "builtins.OSError", "message": "disk busy", "stack": "Traceback..."}
HOOK_110_S = log(
    (0.0, "run_created", None, {}),
    (0.005, "run_started", None, {}),
    (0.010, "step_created", "step_A", STEP),
    (0.010, "step_started", "step_A", {}),
    (0.015, "step_completed", "step_A", {"result": 1}),
    (0.016, "hook_created", "hook_H", {"token": "approve:1", "metadata": None}),
    (110.016, "hook_received", "hook_H", {"payload": {"ok": True}}),
    (110.020, "step_created", "step_B", {**STEP, "step_name": "step//./app//ship"}),
    (110.020, "step_started", "step_B", {}),
    (110.025, "step_completed", "step_B", {"result": 2}),
    (110.030, "run_completed", None, {"output": 3}),
)


def widths(waterfall: Waterfall, name: str) -> dict[str, float]:
    """Each lane's drawn width in percent of the track, by lane id."""
    scale = scale_for(waterfall, name)  # type: ignore[arg-type]
    return {
        lane.lane_id: sum(scale.percent(s.end) - scale.percent(s.start) for s in lane.segments)
        for lane in waterfall.lanes
    }


def test_110_seconds_in_a_hook_leaves_5_ms_steps_visible() -> None:
    waterfall = build_waterfall(run_record("completed", 110.030), HOOK_110_S, {}, at(200))
    assert [lane.lane_id for lane in waterfall.lanes] == ["step_A", "hook_H", "step_B"]
    linear = widths(waterfall, "linear")
    assert linear["step_A"] < 0.01  # a linear axis would draw the steps as hair-thin ticks
    compressed = widths(waterfall, "compressed")
    assert compressed["step_A"] > 5 and compressed["step_B"] > 5
    assert compressed["hook_H"] > 2 * compressed["step_A"]  # the long wait is still longest
    markup = waterfall_section(run_record("completed", 110.030), waterfall, "compressed")
    bars = re.findall(r'class="seg seg-([a-z-]+)" style="left:([\d.]+)%;width:([\d.]+)%"', markup)
    drawn = {kind: float(width) for kind, _, width in bars if kind in ("attempt-ok", "hook")}
    assert drawn["attempt-ok"] > 5 and drawn["hook"] > 5
    assert "+1 m 50 s" in markup  # the axis is labelled in real time


def test_attempts_back_off_and_errors_are_kept_per_attempt() -> None:
    events = log(
        (0.0, "run_created", None, {}),
        (0.0, "run_started", None, {}),
        (0.1, "step_created", "step_A", STEP),
        (0.2, "step_started", "step_A", {}),
        (0.3, "step_retrying", "step_A", {"error": ERROR, "retry_after": at(1.3).isoformat()}),
        (1.3, "step_started", "step_A", {}),
        (1.4, "step_failed", "step_A", {"error": {**ERROR, "message": "gave up"}}),
        (1.5, "run_failed", None, {"error": ERROR}),
    )
    (lane,) = build_waterfall(run_record("failed", 1.5), events, {}, at(9)).lanes
    assert [s.kind for s in lane.segments] == [
        "queued",
        "attempt-failed",
        "backoff",
        "attempt-failed",
    ]
    assert [(a.number, a.outcome) for a in lane.attempts] == [(1, "retried"), (2, "failed")]
    assert lane.attempts[0].error == ERROR and lane.attempts[0].retry_at == at(1.3).isoformat()
    assert lane.detail["error"] == {**ERROR, "message": "gave up"}
    assert lane.status == "failed"


def test_a_live_run_draws_open_waits_to_now_and_a_cancelled_one_marks_the_cut() -> None:
    events = log(
        (0.0, "run_created", None, {}),
        (0.0, "run_started", None, {}),
        (1.0, "wait_created", "wait_W", {"resume_at": at(3601).isoformat()}),
        (1.0, "hook_created", "hook_H", {"token": "t", "metadata": None}),
    )
    live = build_waterfall(run_record("running", None), events, {}, at(10))
    assert {(lane.kind, lane.segments[-1].end) for lane in live.lanes} == {
        ("sleep", at(10)),
        ("hook", at(10)),
    }
    assert live.end == at(10)
    cancelled = build_waterfall(
        run_record("cancelled", 5), [*events, *log((5, "run_cancelled", None, {}))], {}, at(10)
    )
    for lane in cancelled.lanes:
        assert lane.segments[-1].kind == "ended" and lane.end == at(5)


def test_a_hook_that_took_its_payload_ends_there_and_a_child_run_gets_a_lane() -> None:
    child_id = "wrun_CHILD"
    events = log(
        (0.0, "run_created", None, {}),
        (0.0, "run_started", None, {}),
        (0.1, "hook_created", "hook_H", {"token": "t", "metadata": None}),
        (2.0, "hook_received", "hook_H", {"payload": 1}),
        (
            2.1,
            "step_created",
            "step_CHILD",
            {"step_name": START_STEP_ID, "input": {"args": ["workflow//./app//pack", [], {}]}},
        ),
        (2.1, "step_started", "step_CHILD", {}),
        (2.2, "step_completed", "step_CHILD", {"result": child_id}),
        (9.0, "run_completed", None, {"output": None}),
    )
    child = Run(
        run_id=child_id,
        workflow_name="workflow//./app//pack",
        status="completed",
        created_at=at(2.15),
        updated_at=at(4),
        completed_at=at(4),
    )
    lanes = build_waterfall(run_record("completed", 9), events, {child_id: child}, at(20)).lanes
    hook, start, child_lane = lanes
    assert hook.end == at(2.0) and hook.marks == [(at(2.0), "payload received")]
    assert start.name == "start pack" and start.child_run_id == child_id
    assert child_lane.kind == "child" and child_lane.status == "completed"
    assert (child_lane.segments[0].start, child_lane.segments[0].end) == (at(2.15), at(4))


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=30))
def test_the_compressed_scale_keeps_order_and_spans_the_track(offsets: list[float]) -> None:
    marks = [at(o) for o in offsets]
    scale = TimeScale(T0, max(marks), marks, "compressed")
    positions = [scale.percent(m) for m in sorted(marks)]
    assert positions == sorted(positions)
    assert scale.percent(T0) == 0.0
    assert all(0.0 <= p <= 100.0 for p in positions)
    if max(marks) > T0:
        assert scale.percent(max(marks)) == 100.0


def test_durations_read_as_people_say_them() -> None:
    assert [format_seconds(s) for s in (0.0042, 1.3, 125, 3 * 3600 + 600, 3 * 86400)] == [
        "4.2 ms",
        "1.30 s",
        "2 m 05 s",
        "3 h 10 m",
        "3 d 0 h",
    ]
