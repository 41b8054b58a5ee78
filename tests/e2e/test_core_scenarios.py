"""SCENARIOS.md 1-6, 8, 9, 11, 12, 14-20, 26, 28 and 30, end to end on every world."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from examples.e2e import basics, cross_file, hooks, timers
from tests.e2e.conftest import (
    KIT_WORLDS,
    events_of,
    run_async,
    run_to_end,
    running_worker,
    types_of,
)
from wfkit import (
    FatalError,
    HookConflictError,
    HookNotFoundError,
    WorkflowRunFailedError,
    get_hook_by_token,
    resume_hook,
    start,
)
from wfkit.testing import WorkflowEnv


def _completed_steps(world: Any, run_id: str) -> Counter[str]:
    return Counter(
        e.correlation_id for e in events_of(world, run_id) if e.event_type == "step_completed"
    )


def test_1_add_ten(world: Any) -> None:
    run, result = run_async(run_to_end(world, basics.add_ten, 123))
    assert result == 133
    record = world.runs.get(run.run_id)
    assert record.status == "completed"
    assert record.workflow_name == "workflow//./examples/e2e/basics//add_ten"
    steps = world.steps.list(run.run_id)
    assert [(s.status, s.attempt) for s in steps] == [("completed", 1)] * 3


def test_2_gather_three_fans_out_in_one_suspension(world: Any) -> None:
    run, result = run_async(run_to_end(world, basics.gather_three))
    assert result == "ABC"
    kinds = types_of(world, run.run_id)
    first = kinds.index("step_created")
    assert kinds[first : first + 3] == ["step_created"] * 3


def test_3_race_returns_the_fastest(world: Any) -> None:
    began = time.monotonic()
    run, result = run_async(run_to_end(world, basics.race))
    assert result == "b"
    assert time.monotonic() - began < 8
    assert world.runs.get(run.run_id).status == "completed"


def test_3b_race_losers_are_recorded_and_later_replays_consume_them(world: Any) -> None:
    run, result = run_async(run_to_end(world, basics.race_with_tail))
    assert result == {"winner": "b", "tail": "TAIL"}
    # The losers finished while the tail step ran: recorded once each, and the
    # replays after them went on without an unconsumed-event error.
    completed = _completed_steps(world, run.run_id)
    assert len(completed) == 4 and set(completed.values()) == {1}
    assert world.runs.get(run.run_id).status == "completed"


def test_4_any_success_skips_the_fatal_step(world: Any) -> None:
    _run, result = run_async(run_to_end(world, basics.any_success))
    assert result == "b"


@pytest.mark.parametrize("kind", KIT_WORLDS)
def test_5_sleeper_sleeps_durably_on_the_workflow_clock(kind: str, wf_env: WorkflowEnv) -> None:
    run = wf_env.start(timers.sleeper, 2)
    assert wf_env.result(run)["elapsed"] >= 2
    waits = wf_env.world.waits.list(run.run_id)
    assert [w.status for w in waits] == ["completed"]


@pytest.mark.parametrize("kind", KIT_WORLDS)
def test_6_parallel_sleeps_overlap(kind: str, wf_env: WorkflowEnv) -> None:
    began = time.monotonic()
    assert wf_env.run(timers.parallel_sleeps) == 10
    assert time.monotonic() - began < 6


def test_8_hook_collector_gets_payloads_in_order(world: Any) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with running_worker(world):
            run = await start(hooks.hook_collector, "collect-8", "custom-data", world=world)
            hook = await _wait_for_hook("collect-8", world)
            assert hook.run_id == run.run_id
            for payload in ({"n": 1}, {"n": 2}, {"n": 3, "done": True}):
                await resume_hook("collect-8", payload, world=world)
            result = await run.result(timeout=30)
            with pytest.raises(HookNotFoundError):
                await get_hook_by_token("nope", world=world)
            return run, result

    run, result = run_async(scenario())
    assert result["collected"] == [{"n": 1}, {"n": 2}, {"n": 3, "done": True}]
    hook_created = next(e for e in events_of(world, run.run_id) if e.event_type == "hook_created")
    assert hook_created.data["token"] == "collect-8"


async def _wait_for_hook(token: str, world: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await get_hook_by_token(token, world=world)
        except HookNotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


def test_9_hook_token_reuse(world: Any) -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        async with running_worker(world):
            first = await start(hooks.wait_once, "shared-9", world=world)
            await _wait_for_hook("shared-9", world)
            second = await start(hooks.wait_once, "shared-9", world=world)
            with pytest.raises(WorkflowRunFailedError) as failed:
                await second.result(timeout=30)
            await resume_hook("shared-9", {"from": "client"}, world=world)
            first_result = await first.result(timeout=30)
            third = await start(hooks.wait_once, "shared-9", world=world)
            await _wait_for_hook("shared-9", world)
            await resume_hook("shared-9", {"again": True}, world=world)
            return failed.value, first_result, await third.result(timeout=30)

    failure, first_result, third_result = run_async(scenario())
    assert isinstance(failure.cause, HookConflictError)
    assert "already in use" in str(failure.cause)
    assert first_result == {"from": "client"}
    assert third_result == {"again": True}


def test_11_null_byte(world: Any) -> None:
    _run, result = run_async(run_to_end(world, basics.null_byte))
    assert result == "null byte \0"


def test_12_metadata(world: Any) -> None:
    run, result = run_async(run_to_end(world, basics.metadata))
    assert result["workflow"]["run_id"] == run.run_id
    assert result["from_step"]["workflow"]["run_id"] == run.run_id
    assert result["workflow"]["name"] == "workflow//./examples/e2e/basics//metadata"
    assert result["from_step"]["step"]["attempt"] >= 1
    assert result["from_step"]["step"]["step_id"].startswith("step_")
    step_name = result["from_step"]["step"]["step_name"]
    assert step_name == "step//./examples/e2e/basics//step_metadata"
    assert not any("run" in f or "workflow" in f for f in result["from_step"]["step_fields"])
    assert not any(f.startswith("step") for f in result["from_step"]["workflow_fields"])


def test_14_retry_counter(world: Any) -> None:
    run, result = run_async(run_to_end(world, basics.retry_counter))
    assert result == 3
    (step,) = world.steps.list(run.run_id)
    assert (step.status, step.attempt) == ("completed", 3)
    assert types_of(world, run.run_id).count("step_retrying") == 2


@pytest.mark.parametrize("kind", KIT_WORLDS)
def test_15_retry_after_is_honoured_and_fatal_is_catchable(kind: str, wf_env: WorkflowEnv) -> None:
    run = wf_env.start(basics.retry_and_fatal)
    result = wf_env.result(run)
    assert result["got_fatal"] is True
    assert result["retried"]["attempt"] == 2
    started = [e.created_at for e in wf_env.events(run) if e.event_type == "step_started"]
    assert (started[1] - started[0]).total_seconds() >= 2
    assert wf_env.world.runs.get(run.run_id).status == "completed"


def test_16_max_retries_zero_means_one_attempt(world: Any) -> None:
    run, result = run_async(run_to_end(world, basics.max_retries_zero))
    assert result == "caught: flaky failed"
    (step,) = world.steps.list(run.run_id)
    assert (step.status, step.attempt) == ("failed", 1)
    assert "step_retrying" not in types_of(world, run.run_id)


def test_17_uncaught_fatal_fails_the_run(world: Any) -> None:
    run, result = run_async(run_to_end(world, basics.uncaught_fatal))
    assert isinstance(result, WorkflowRunFailedError)
    assert isinstance(result.cause, FatalError)
    assert "Fatal step error" in str(result.cause)
    assert world.runs.get(run.run_id).status == "failed"
    (step,) = world.steps.list(run.run_id)
    assert (step.status, step.attempt) == ("failed", 1)


def test_18_traceback_names_the_helpers_original_file(world: Any) -> None:
    _run, result = run_async(run_to_end(world, cross_file.cross_file_error, -1))
    assert isinstance(result, WorkflowRunFailedError)
    assert isinstance(result.cause, ValueError)
    stack = result.stack
    assert "examples/e2e/helpers.py" in stack and "check_positive" in stack
    assert 'raise ValueError(f"expected a positive number' in stack
    assert "examples/e2e/cross_file.py" in stack
    assert ".wfkit" not in stack and "__wfkit_workflow__" not in stack


def test_19_step_error_caught(world: Any) -> None:
    run, result = run_async(run_to_end(world, basics.step_error_caught))
    assert result == {"type": "ValueError", "message": "Step error message"}
    assert world.runs.get(run.run_id).status == "completed"
    (step,) = world.steps.list(run.run_id)
    assert step.attempt == 1  # @step_options(max_retries=0): no retry
    assert step.error["message"] == "Step error message"
    assert "raise ValueError" in step.error["stack"]


def test_20_direct_step_call_just_runs() -> None:
    assert asyncio.run(basics.add(2, 3)) == 5


def test_26_fan_out_records_each_step_once(world: Any) -> None:
    run, result = run_async(run_to_end(world, basics.fan_out, 110), timeout=180)
    assert sorted(result) == sorted([*range(10), *range(1000, 1100)])
    completed = _completed_steps(world, run.run_id)
    assert len(completed) == 110 and set(completed.values()) == {1}


def test_30_determinism_identical_on_every_replay(world: Any) -> None:
    from wfkit.runtime.api.client import get_run
    from wfkit.runtime.loading.registry import get_workflow
    from wfkit.runtime.replay.session import Completed, replay
    from wfkit.runtime.serialization import deserialize_call

    run, result = run_async(run_to_end(world, basics.determinism))
    record = world.runs.get(run.run_id)
    args, kwargs, _closure, _this = deserialize_call(record.input)
    fn = get_workflow(record.workflow_name)
    again = replay(fn, record, world.events.list(run.run_id), args=args, kwargs=kwargs)
    assert isinstance(again, Completed)
    assert again.value == result
    assert result["before"]["uuid"] != result["after"]["uuid"]
    datetime.fromisoformat(result["before"]["now"])
    del get_run


def test_28_divergence_fails_the_run_naming_both_steps(world: Any) -> None:
    from wfkit.runtime import gen
    from wfkit.runtime.engine.worker import Worker
    from wfkit.runtime.loading import registry

    workflow_id = "workflow//./tests/e2e/divergence//flow"
    step_a = gen.step_proxy("step//./examples/e2e/basics//add", "add")
    step_b = gen.step_proxy("step//./examples/e2e/basics//noop", "noop")

    async def original(x: int) -> int:
        first = await step_a(x, 1)
        await asyncio.sleep(3600)  # parks the run on a durable wait
        return first

    async def changed(x: int) -> int:
        return await step_b(x)

    async def scenario() -> Any:
        registry.register_workflow(workflow_id, original)
        async with running_worker(world):
            run = await start(workflow_id, 1, world=world)
            deadline = time.monotonic() + 20
            while "wait_created" not in types_of(world, run.run_id):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        registry.register_workflow(workflow_id, changed)  # "a deploy" changes the code
        worker = Worker(world=world, replay_cache=False)
        from wfkit.runtime.engine.messages import wake_run

        wake_run(world, run.run_id)
        await asyncio.wait_for(worker.run_until_complete(run.run_id), 20)
        with pytest.raises(WorkflowRunFailedError) as failed:
            await run.result(timeout=5)
        return failed.value

    failure = run_async(scenario())
    message = str(failure)
    assert "add" in message and "noop" in message
    assert failure.error.get("type", "").endswith("ReplayDivergenceError")
    assert failure.error_code == "REPLAY_DIVERGENCE"
