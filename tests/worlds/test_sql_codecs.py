"""The shared SQL layer's row codecs: every record reads back as it was written, on
both databases, and each database stores values the way existing files hold them.
(That the databases hand back what was stored is the conformance suite's part.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wfkit.worlds.base import Hook, Run, Step
from wfkit.worlds.sql import Codecs, Dialect, build_tables

CODECS: dict[Dialect, Codecs] = {
    "sqlite": Codecs.build(build_tables("sqlite")),
    "postgresql": Codecs.build(build_tables("postgresql")),
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()  # NUL and astral characters included
    | st.just("null"),  # the text SQLite stores None as, here as a string value
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
times = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
# ``null`` is how SQLite stores None, so it must not be taken for None when it is text.
texts = st.text() | st.just("null")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@given(
    input=json_values,
    output=json_values,
    error=st.none() | st.dictionaries(st.text(), json_values, max_size=3),
    context=st.dictionaries(st.text(), json_values, max_size=3),
    created=times,
    later=st.none() | times,
    name=texts,
)
def test_a_run_reads_back_as_written(
    dialect: Dialect,
    input: Any,
    output: Any,
    error: dict[str, Any] | None,
    context: dict[str, Any],
    created: datetime,
    later: datetime | None,
    name: str,
) -> None:
    codec = CODECS[dialect].run
    run = Run(
        run_id="wrun_1",
        workflow_name=name,
        status="completed",
        input=input,
        output=output,
        error=error,
        deployment_id=name,
        execution_context=context,
        created_at=created,
        updated_at=created,
        started_at=later,
        completed_at=later,
    )
    assert codec.from_row(codec.params(run)) == run


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@given(output=json_values, attempt=st.integers(0, 2**31 - 1), retry_after=st.none() | times)
def test_an_updated_step_reads_back_as_written(
    dialect: Dialect, output: Any, attempt: int, retry_after: datetime | None
) -> None:
    codec = CODECS[dialect].step
    now = datetime.now(UTC)
    step = Step(
        run_id="wrun_1",
        step_id="step_1",
        step_name="s",
        status="pending",
        input=[1, "\u0000"],
        created_at=now,
        updated_at=now,
    )
    changed = step.model_copy(
        update={
            "output": output,
            "attempt": attempt,
            "retry_after": retry_after,
            "updated_at": now + timedelta(seconds=1),
        }
    )
    row = codec.params(step)
    row.update(codec.update_params(changed))  # what an UPDATE leaves in the row
    assert codec.from_row(row) == changed
    assert set(codec.update_params(changed)) == {*codec.mutable, *codec.keys}


def test_each_database_stores_values_as_its_existing_files_do() -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    hook = Hook(
        run_id="wrun_1",
        hook_id="hook_1",
        token="t",
        status="active",
        metadata=None,
        is_webhook=True,
        respond_with={"status": 200, "body": "\u0000"},
        created_at=at,
        updated_at=at,
    )
    sqlite = CODECS["sqlite"].hook.params(hook)
    assert sqlite["metadata"] == "null"  # NOT NULL column: None is JSON null
    assert sqlite["is_webhook"] == 1
    assert sqlite["respond_with"] == '{"status":200,"body":"\\u0000"}'  # NUL escaped
    assert sqlite["created_at"] == "2030-01-02T03:04:05.006000+00:00"
    postgres = CODECS["postgresql"].hook.params(hook)
    assert postgres["metadata"] is None  # SQL NULL
    assert postgres["is_webhook"] is True
    assert postgres["respond_with"] == sqlite["respond_with"]
    assert postgres["created_at"] == at  # timestamptz: the driver sends the datetime


def test_a_record_with_a_field_its_table_lacks_is_refused() -> None:
    from wfkit.worlds.sql import RowCodec

    tables = build_tables("sqlite")
    with pytest.raises(TypeError, match="hooks has no column for Run"):
        RowCodec(Run, tables.hooks, "sqlite")
