"""``@step_options(...)``: the typed way to set a step's options."""

from __future__ import annotations

import pytest

from wfkit import step_options
from wfkit.runtime.loading.registry import DEFAULT_MAX_RETRIES, StepEntry


async def plain() -> int:
    return 1


@step_options(max_retries=7)
async def configured() -> int:
    return 2


def test_the_decorator_sets_what_the_executor_reads() -> None:
    assert StepEntry("step//./a//configured", fn=configured).max_retries == 7
    assert StepEntry("step//./a//plain", fn=plain).max_retries == DEFAULT_MAX_RETRIES


def test_no_options_leave_the_function_alone() -> None:
    assert step_options()(plain) is plain
    assert not hasattr(plain, "max_retries")


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_a_bad_max_retries_is_refused_at_once(bad: object) -> None:
    with pytest.raises(ValueError, match=r"step_options\(max_retries=...\) needs an int >= 0"):
        step_options(max_retries=bad)  # type: ignore[arg-type]
