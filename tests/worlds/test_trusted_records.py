"""Records the write path builds without validation are the validated ones.

``trusted_constructor`` and ``copy_record`` (``wfkit.worlds.base.records``) skip
pydantic's validation on the hot path; a record a user gets must still be equal
to, and indistinguishable from, the one the validating constructor gives: the
same ``__dict__`` (order and value types), fields set, extra and private values.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from wfkit.worlds.base import (
    Event,
    EventRequest,
    EventResult,
    FoldedState,
    Hook,
    InvalidEventError,
    QueueMessage,
    Run,
    StateLoader,
    Step,
    Wait,
    plan_events,
)
from wfkit.worlds.base.records import copy_record, trusted_constructor
from wfkit.worlds.sql import Codecs, Dialect, build_tables

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


CODECS: dict[Dialect, Codecs] = {
    "sqlite": Codecs.build(build_tables("sqlite")),
    "postgresql": Codecs.build(build_tables("postgresql")),
}
LATER = datetime(2026, 1, 2, 4, 0, tzinfo=timezone(timedelta(hours=2)))
RECORDS: list[BaseModel] = [
    Run(
        run_id="wrun_1",
        workflow_name="w",
        status="completed",
        input=[1, {"a": None}],
        output="null",
        error={"message": "m", "stack": ["x"]},
        execution_context={"k": [1]},
        created_at=NOW,
        updated_at=LATER,
        started_at=NOW,
        completed_at=LATER,
        idempotency_key="key",
        queue_name="q",
        queue_priority=3,
    ),
    Run(run_id="wrun_2", workflow_name="w", status="pending", created_at=NOW, updated_at=NOW),
    Step(**STEP),
    Step(**{**STEP, "status": "failed", "error": {}, "attempt": 2, "retry_after": LATER}),
    Hook(
        run_id="wrun_1",
        hook_id="hook_1",
        token="t",
        status="active",
        metadata={"m": 1},
        is_webhook=True,
        created_at=NOW,
        updated_at=NOW,
    ),
    Wait(
        run_id="wrun_1",
        wait_id="wait_1",
        status="waiting",
        resume_at=LATER,
        created_at=NOW,
        updated_at=NOW,
    ),
    Event(
        event_id="evnt_1",
        run_id="wrun_1",
        event_type="hook_created",
        correlation_id="hook_1",
        data={"token": "t", "nested": {"a": [1.5, None]}},
        created_at=NOW,
    ),
    Event(event_id="evnt_2", run_id="wrun_1", event_type="run_started", created_at=NOW),
    QueueMessage(
        message_id="msg_1",
        queue="wfkit_steps",
        payload={"run_id": "wrun_1"},
        attempt=1,
        created_at=NOW,
        visible_at=LATER,
    ),
]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_a_decoded_row_is_the_validated_record(dialect: Dialect, record: BaseModel) -> None:
    """``RowCodec.from_row`` builds a row's record without validation when its
    values have their fields' exact types: the record is the validated one."""
    codecs = CODECS[dialect]
    codec: Any = {
        Run: codecs.run,
        Step: codecs.step,
        Hook: codecs.hook,
        Wait: codecs.wait,
        Event: codecs.event,
        QueueMessage: codecs.message,
    }[type(record)]
    row = codec.params(record)
    decoded = codec.from_row(row)
    want = type(record)(**{name: getattr(decoded, name) for name in type(record).model_fields})
    assert_same_record(decoded, want)
    assert decoded == record or type(record) is QueueMessage  # visible_at: epoch seconds


def test_a_damaged_row_still_meets_validation() -> None:
    """Values a hand or a fault left in a row that are not of their fields' exact
    types take validation: its conversions, its errors."""
    codec = CODECS["sqlite"].step
    row = codec.params(Step(**STEP))
    converted = codec.from_row({**row, "attempt": "3"})  # TEXT where an INTEGER was
    assert converted.attempt == 3 and type(converted.attempt) is int
    with pytest.raises(ValidationError):
        codec.from_row({**row, "status": "exploded"})
    with pytest.raises(ValidationError):
        codec.from_row({**row, "step_name": 7})
    with pytest.raises(ValidationError):
        codec.from_row({**row, "error": "[1]"})  # JSON, but not an object
    with pytest.raises(ValidationError):
        CODECS["sqlite"].event.from_row(
            {**CODECS["sqlite"].event.params(RECORDS[6]), "event_type": "run_exploded"}  # type: ignore[arg-type]
        )
