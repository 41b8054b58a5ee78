"""Records the write path builds without validation are the validated ones.

``trusted_constructor`` and ``copy_record`` (``wfkit.worlds.base.records``) skip
pydantic's validation on the hot path; a record a user gets must still be equal
to, and indistinguishable from, the one the validating constructor gives: the
same ``__dict__`` (order and value types), fields set, extra and private values.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from wfkit.worlds.base import (
    Event,
    EventRequest,
    EventResult,
    FoldedState,
    InvalidEventError,
    Run,
    StateLoader,
    Step,
    plan_events,
)
from wfkit.worlds.base.records import copy_record, trusted_constructor

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def assert_same_record(got: BaseModel, want: BaseModel) -> None:
    """``got`` is ``want`` in every way a user could look at it."""
    assert type(got) is type(want)
    assert got == want
    assert list(got.__dict__) == list(want.__dict__)
    for name, value in want.__dict__.items():
        assert type(got.__dict__[name]) is type(value), name
        if isinstance(value, BaseModel):
            assert_same_record(got.__dict__[name], value)
    assert got.model_fields_set == want.model_fields_set
    assert type(got.model_fields_set) is type(want.model_fields_set)
    assert got.__pydantic_extra__ == want.__pydantic_extra__
    assert got.__pydantic_private__ == want.__pydantic_private__
    assert got.model_dump(exclude_unset=True) == want.model_dump(exclude_unset=True)
    assert got.model_dump_json() == want.model_dump_json()
    try:
        want_hash: int | None = hash(want)
    except TypeError:  # a field holds a dict: unhashable either way
        want_hash = None
    if want_hash is not None:
        assert hash(got) == want_hash
    assert pickle.loads(pickle.dumps(got)) == want


def validated(record: BaseModel) -> BaseModel:
    """``record`` rebuilt through validation from the fields it was given."""
    fields: dict[str, Any] = {}
    for name in record.model_fields_set:
        value = getattr(record, name)
        fields[name] = validated(value) if isinstance(value, BaseModel) else value
    return type(record)(**fields)


STEP = {
    "run_id": "wrun_1",
    "step_id": "step_1",
    "step_name": "charge",
    "status": "pending",
    "input": {"args": [1, 2]},
    "created_at": NOW,
    "updated_at": NOW,
}


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (Step, STEP),
        (Step, {**STEP, "attempt": 0, "error": None}),
        (
            Event,
            {
                "event_id": "evnt_1",
                "run_id": "wrun_1",
                "event_type": "step_created",
                "correlation_id": "step_1",
                "data": {"step_name": "charge"},
                "created_at": NOW,
            },
        ),
        (Event, {"event_id": "e", "run_id": "r", "event_type": "run_started", "created_at": NOW}),
        (
            Run,
            {
                "run_id": "wrun_1",
                "workflow_name": "w",
                "status": "pending",
                "created_at": NOW,
                "updated_at": NOW,
            },
        ),
    ],
)
def test_trusted_constructor_gives_the_validated_record(
    model: type[BaseModel], fields: dict[str, Any]
) -> None:
    assert_same_record(trusted_constructor(model)(**fields), model(**fields))


def test_trusted_constructor_calls_default_factories_per_record() -> None:
    make = trusted_constructor(Event)
    first = make(event_id="e1", run_id="r", event_type="run_started", created_at=NOW)
    second = make(event_id="e2", run_id="r", event_type="run_started", created_at=NOW)
    assert first.data == {} and first.data is not second.data


def test_trusted_constructor_refuses_unknown_and_missing_fields() -> None:
    make = trusted_constructor(Step)
    with pytest.raises(TypeError):
        make(**STEP, colour="red")
    with pytest.raises(KeyError):
        make(run_id="wrun_1")


def test_copy_record_is_model_copy() -> None:
    step = Step(**STEP)
    update = {"status": "running", "attempt": 1, "started_at": NOW, "updated_at": NOW}
    copied = copy_record(step, update)
    assert_same_record(copied, step.model_copy(update=update))
    assert step.status == "pending" and step.model_fields_set == set(STEP)


def _plan(requests: list[EventRequest], *, expected: str | None = None) -> list[EventResult]:
    state = FoldedState()
    loader = StateLoader(state, {})
    created = plan_events(
        loader,
        "wrun_1",
        [
            EventRequest(event_type="run_created", data={"workflow_name": "w", "input": [1]}),
            EventRequest(event_type="run_started"),
        ],
        now=NOW,
    )
    loader.apply(created)
    loader.events["wrun_1"] = list(created.events)
    plan = plan_events(loader, "wrun_1", requests, now=NOW)
    loader.apply(plan)
    return plan.results


def test_planned_records_are_the_validated_ones() -> None:
    """Every record of a step's write path equals its validated twin."""
    first = _plan(
        [
            EventRequest(
                event_type="step_created",
                correlation_id="step_1",
                data={"step_name": "s", "input": {"args": (1, 2)}},
            ),
            EventRequest(event_type="step_started", correlation_id="step_1"),
            EventRequest(
                event_type="step_completed", correlation_id="step_1", data={"result": {"n": 1}}
            ),
            EventRequest(event_type="run_completed", data={"output": [1]}),
        ]
    )
    assert [r.event.event_type for r in first] == [
        "step_created",
        "step_started",
        "step_completed",
        "run_completed",
    ]
    for result in first:
        assert_same_record(result, validated(result))
        for record in (result.event, result.run, result.step):
            if record is not None:
                assert_same_record(record, validated(record))
    assert first[0].event.data == {"step_name": "s", "input": {"args": [1, 2]}}
    assert first[0].step is not None and first[0].step.input == {"args": [1, 2]}


def test_an_unvalidated_request_still_meets_validation() -> None:
    """A request built without validation (``model_construct``) gets the
    validating constructors: its errors, its conversions."""
    with pytest.raises(InvalidEventError):
        _plan(
            [
                EventRequest(
                    event_type="step_created", correlation_id="step_1", data={"step_name": 5}
                )
            ]
        )
    bad_type = EventRequest.model_construct(event_type="step_exploded", correlation_id="s")
    with pytest.raises(Exception, match="step_exploded"):
        _plan([bad_type])
    as_bytes = EventRequest.model_construct(
        event_type="step_created", correlation_id=b"step_1", data={"step_name": "s"}
    )
    (result,) = _plan([as_bytes])
    assert result.event.correlation_id == "step_1"
    assert_same_record(result.event, validated(result.event))
