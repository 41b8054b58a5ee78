"""The pure lifecycle rules of ``wfkit.worlds.base``: ids, timestamps, plans and folds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from wfkit.worlds.base import (
    CorruptedLogError,
    Event,
    EventRequest,
    FoldedState,
    InvalidEventError,
    StateLoader,
    fold_events,
    new_id,
    parse_timestamp,
    plan_events,
)


def _event(event_type: str, correlation_id: str | None = None, **data: object) -> Event:
    return Event(
        event_id=new_id("evnt"),
        run_id="wrun_1",
        event_type=event_type,  # type: ignore[arg-type]
        correlation_id=correlation_id,
        data=dict(data),
        created_at=datetime.now(UTC),
    )


def test_new_id_is_prefixed_monotonic_and_unique() -> None:
    ids = [new_id("evnt") for _ in range(20_000)]
    assert all(i.startswith("evnt_") and len(i) == 31 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_parse_timestamp() -> None:
    assert parse_timestamp("2030-01-02T03:04:05Z") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    plus_two = datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert parse_timestamp(plus_two.isoformat()).tzinfo == UTC
    assert parse_timestamp("2030-01-02T03:04:05").tzinfo == UTC
    with pytest.raises(InvalidEventError):
        parse_timestamp("tomorrow")
    with pytest.raises(InvalidEventError):
        parse_timestamp(5)


def test_plan_is_pure_until_applied() -> None:
    loader = StateLoader(FoldedState())
    plan = plan_events(
        loader,
        "wrun_1",
        [
            EventRequest(event_type="run_created", data={"workflow_name": "wf"}),
            EventRequest(event_type="run_started"),
        ],
    )
    assert [e.event_type for e in plan.events] == ["run_created", "run_started"]
    assert list(plan.new_runs) == ["wrun_1"] and plan.new_runs["wrun_1"].status == "running"
    assert plan.changed_runs == {}
    assert loader.load_run("wrun_1") is None
    loader.apply(plan)
    run = loader.load_run("wrun_1")
    assert run is not None and run.status == "running"


def test_plan_rejects_non_json_data() -> None:
    with pytest.raises(InvalidEventError):
        plan_events(
            StateLoader(FoldedState()),
            "wrun_1",
            [EventRequest(event_type="run_created", data={"workflow_name": "wf", "x": object()})],
        )


def test_fold_refuses_a_corrupted_log() -> None:
    created = _event("run_created", workflow_name="wf")
    with pytest.raises(CorruptedLogError, match="step_completed"):
        fold_events([created, _event("run_started"), _event("step_completed", "step_a")])
    with pytest.raises(CorruptedLogError):
        fold_events([_event("run_started")])


def test_fold_gives_records() -> None:
    events = [
        _event("run_created", workflow_name="wf", input=[1]),
        _event("run_started"),
        _event("hook_created", "hook_a", token="t"),
        _event("step_created", "step_a", step_name="s"),
        _event("step_started", "step_a"),
        _event("step_completed", "step_a", result=5),
        _event("run_completed", output=5),
    ]
    state = fold_events(events)
    assert state.runs["wrun_1"].status == "completed"
    assert state.runs["wrun_1"].output == 5
    assert state.steps[("wrun_1", "step_a")].output == 5
    assert state.hooks["hook_a"].status == "disposed"


def test_an_event_type_no_transition_knows_is_a_loud_error() -> None:
    """The dispatch is exhaustive: an unknown type (here built without validation) is
    refused by name, never applied as some other event of its entity (the dispatch by
    prefix used to fold this ``step_paused`` as a ``step_failed``)."""
    running_step = [
        _event("run_created", workflow_name="wf"),
        _event("run_started"),
        _event("step_created", "step_a", step_name="s"),
        _event("step_started", "step_a"),
    ]
    paused = Event.model_construct(
        event_id=new_id("evnt"),
        run_id="wrun_1",
        event_type="step_paused",
        correlation_id="step_a",
        data={},
        created_at=datetime.now(UTC),
    )
    with pytest.raises(AssertionError, match="step_paused"):
        fold_events([*running_step, paused])
