"""Orchestrator + executor + worker end to end on the memory and local worlds."""

from __future__ import annotations

import asyncio
import importlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.runtime import wf_helpers
from wfkit.runtime.api.client import get_hook_by_token, resume_hook, start
from wfkit.runtime.engine.run_state import MOST_STEPS_WITHOUT_WAIT, RunState, placeholder_run
from wfkit.runtime.engine.worker import Worker
from wfkit.runtime.errors import FatalError, HookNotFoundError, WorkflowRunFailedError
from wfkit.runtime.replay.session import ReplaySession
from wfkit.worlds.base import Event, World, WorldError, utc_now


@pytest.fixture(autouse=True)
def helpers() -> Iterator[Any]:
    """(Re-)register the helper workflows: other tests may clear the registry."""
    yield importlib.reload(wf_helpers)


def _make_world(kind: str, tmp_path: Path) -> World:
    if kind == "memory":
        from wfkit.worlds.memory import MemoryWorld

        return MemoryWorld()
    from wfkit.worlds.local import LocalWorld

    return LocalWorld.from_spec(f"sqlite:///{tmp_path / 'wfkit.db'}")


@pytest.fixture(params=["memory", "local"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    instance = _make_world(request.param, tmp_path)
    yield instance
    instance.close()


def _run(coro: Any, timeout: float = 30) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def _start_and_finish(world: World, workflow_id: str, *args: Any, **options: Any) -> Any:
    run = await start(workflow_id, *args, world=world)
    worker = Worker(world=world, poll_interval=0.01, **options)
    await worker.run_until_complete(run.run_id, timeout=20)
    return run


def _types(world: World, run_id: str) -> list[str]:
    return [e.event_type for e in world.events.list(run_id)]


def _completions(world: World, run_id: str) -> Counter[str]:
    return Counter(
        e.correlation_id for e in world.events.list(run_id) if e.event_type == "step_completed"
    )


def test_sequential_steps_one_transaction_each(world: World) -> None:
    run = _run(_start_and_finish(world, wf_helpers.sequential, 5))
    assert _run(run.result(timeout=1)) == sum(range(5))
    kinds = _types(world, run.run_id)
    assert kinds[:2] == ["run_created", "run_started"]
    assert kinds[-1] == "run_completed"
    assert kinds.count("step_completed") == 5
    assert [(s.status, s.attempt) for s in world.steps.list(run.run_id)] == [("completed", 1)] * 5


def test_gather_creates_all_steps_in_one_suspension(world: World) -> None:
    run = _run(_start_and_finish(world, wf_helpers.gather, 20))
    assert _run(run.result(timeout=1)) == list(range(20))
    kinds = _types(world, run.run_id)
    first = kinds.index("step_created")
    assert kinds[first : first + 40] == ["step_created"] * 20 + ["step_started"] * 20
    assert set(_completions(world, run.run_id).values()) == {1}


def test_queued_steps_when_inline_is_off(world: World) -> None:
    run = _run(_start_and_finish(world, wf_helpers.gather, 5, inline_steps=False))
    assert _run(run.result(timeout=1)) == list(range(5))
    run = _run(_start_and_finish(world, wf_helpers.sequential, 3, inline_steps=False))
    assert _run(run.result(timeout=1)) == 3


def test_retries_fatal_and_max_retries_zero(world: World) -> None:
    run = _run(_start_and_finish(world, wf_helpers.retries))
    assert _run(run.result(timeout=1)) == {"third": 3, "plain": "always", "fatal": True}
    steps = {s.step_name.rsplit("//", 1)[-1]: s for s in world.steps.list(run.run_id)}
    assert (steps["flaky_until"].status, steps["flaky_until"].attempt) == ("completed", 3)
    assert (steps["plain_flaky"].status, steps["plain_flaky"].attempt) == ("failed", 1)
    assert (steps["fatal"].status, steps["fatal"].attempt) == ("failed", 1)
    retrying = [e for e in world.events.list(run.run_id) if e.event_type == "step_retrying"]
    assert len(retrying) == 2
    assert all(e.correlation_id == steps["flaky_until"].step_id for e in retrying)


def test_uncaught_fatal_fails_the_run(world: World) -> None:
    run = _run(_start_and_finish(world, wf_helpers.uncaught_fatal))
    with pytest.raises(WorkflowRunFailedError) as failed:
        _run(run.result(timeout=1))
    assert isinstance(failed.value.cause, FatalError)
    assert world.runs.get(run.run_id).status == "failed"


def test_retry_after_is_honoured(world: World) -> None:
    run = _run(_start_and_finish(world, wf_helpers.retry_after, 0.5))
    assert _run(run.result(timeout=1)) == 2
    started = [
        e.created_at for e in world.events.list(run.run_id) if e.event_type == "step_started"
    ]
    assert (started[1] - started[0]).total_seconds() >= 0.5


@pytest.mark.parametrize("inline_wait", [1.0, 0.0])
def test_sleep_wakes_up(world: World, inline_wait: float) -> None:
    run = _run(_start_and_finish(world, wf_helpers.sleeper, 0.3, inline_wait_seconds=inline_wait))
    assert _run(run.result(timeout=1)) == "WOKE"
    assert [w.status for w in world.waits.list(run.run_id)] == ["completed"]


def test_hook_resume_and_unknown_token(world: World) -> None:
    async def scenario() -> Any:
        run = await start(wf_helpers.hooked, "tok-1", world=world)
        worker = Worker(world=world, poll_interval=0.01)
        task = asyncio.create_task(worker.run_until_complete(run.run_id, timeout=20))
        for _ in range(500):
            try:
                hook = await get_hook_by_token("tok-1", world=world)
                break
            except HookNotFoundError:
                await asyncio.sleep(0.01)
        assert hook.run_id == run.run_id
        await resume_hook("tok-1", {"n": 1}, world=world)
        await resume_hook("tok-1", {"n": 2, "done": True}, world=world)
        await task
        with pytest.raises(HookNotFoundError):
            await get_hook_by_token("nope", world=world)
        with pytest.raises(HookNotFoundError):
            await resume_hook("tok-1", {"late": True}, world=world)
        return await run.result(timeout=1)

    assert _run(scenario()) == [{"n": 1}, {"n": 2, "done": True}]


def test_cancel(world: World) -> None:
    async def scenario() -> Any:
        run = await start(wf_helpers.hooked, "tok-c", world=world)
        worker = Worker(world=world, poll_interval=0.01)
        await worker.drain(timeout=10)
        assert await run.status() == "running"
        await run.cancel()
        await run.cancel()  # already terminal: tolerated
        assert await run.status() == "cancelled"
        await worker.drain(timeout=10)
        with pytest.raises(HookNotFoundError):
            await get_hook_by_token("tok-c", world=world)
        return run

    run = _run(scenario())
    from wfkit.runtime.errors import WorkflowRunCancelledError

    with pytest.raises(WorkflowRunCancelledError):
        _run(run.result(timeout=1))


def _shape(world: World, run_id: str) -> list[tuple[str, str | None, Any]]:
    """Event types, correlation ids and data, minus what depends on wall time."""
    shape = []
    for event in world.events.list(run_id):
        data = {k: v for k, v in event.data.items() if k not in ("retry_after", "resume_at")}
        shape.append((event.event_type, event.correlation_id, data))
    return shape


@pytest.mark.parametrize("provisional", [True, False])
def test_cache_on_and_off_give_the_same_log(world: World, provisional: bool) -> None:
    async def one(cache: bool) -> list[tuple[str, str | None, Any]]:
        run = await start(
            wf_helpers.mixed, 5, world=world, run_id=f"wrun_cache_{cache}_{provisional}"
        )
        worker = Worker(
            world=world, poll_interval=0.01, replay_cache=cache, provisional=provisional
        )
        await worker.run_until_complete(run.run_id, timeout=20)
        assert await run.result(timeout=1) == {
            "first": 6,
            "pair": [7, 8, "X"],
            "winner": "FAST",
            "tail": 15,
        }
        return _shape(world, run.run_id)

    with_cache = _run(one(True))
    without = _run(one(False))

    # correlation ids are seeded by the run id, which differs: compare positions instead
    def normalized(shape: list[tuple[str, str | None, Any]]) -> list[tuple[str, int, Any]]:
        order: dict[str, int] = {}
        return [(t, order.setdefault(c, len(order)) if c else -1, d) for t, c, d in shape]

    assert normalized(with_cache) == normalized(without)


class _Dead(WorldError):
    pass


class _Killable:
    """Forwards to a world until ``kill()``; then every call fails, as if the process died."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.dead = False

    def kill(self) -> None:
        self.dead = True

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in ("name",) or not hasattr(value, "__dict__"):
            return value
        return _Killable._Part(self, value)

    class _Part:
        def __init__(self, owner: Any, target: Any) -> None:
            self._owner = owner
            self._target = target

        def __getattr__(self, name: str) -> Any:
            attr = getattr(self._target, name)
            if not callable(attr):
                return attr

            def call(*args: Any, **kwargs: Any) -> Any:
                if self._owner.dead:
                    raise _Dead("this worker is dead")
                return attr(*args, **kwargs)

            return call


def test_worker_killed_mid_run_another_finishes_without_duplicates(world: World) -> None:
    async def scenario() -> Any:
        run = await start(wf_helpers.sequential_slow, 6, world=world)
        doomed = _Killable(world)
        first = Worker(world=doomed, poll_interval=0.01, lease_seconds=0.5)  # type: ignore[arg-type]
        task = asyncio.create_task(first.run_until_complete(run.run_id))
        for _ in range(5000):
            if _types(world, run.run_id).count("step_completed") >= 2:
                break
            await asyncio.sleep(0.001)
        doomed.kill()  # nothing acked, nacked or extended from now on
        task.cancel()
        try:
            await task
        except BaseException:
            pass
        assert world.runs.get(run.run_id).status == "running"
        second = Worker(world=world, poll_interval=0.01, lease_seconds=0.5)
        await second.run_until_complete(run.run_id, timeout=20)
        return await run.result(timeout=1), run

    result, run = _run(scenario())
    assert result == sum(range(6))
    assert set(_completions(world, run.run_id).values()) == {1}
    starts = Counter(
        e.correlation_id for e in world.events.list(run.run_id) if e.event_type == "step_started"
    )
    assert max(starts.values()) <= 2  # the step running at the kill ran again, once


def test_inline_steps_run_as_their_own_tasks(world: World) -> None:
    """A step that ends as it starts runs at once (``inline_steps``: eager start), yet
    as its own task: ``current_task()`` and ``asyncio.timeout`` name the step's task."""
    run = _run(_start_and_finish(world, wf_helpers.step_task_names, 3))
    names = _run(run.result(timeout=1))
    assert len(names) == 6 and len(set(names)) == 6
    assert all(name.startswith("wfkit-step-step_") for name in names), names


def test_a_long_run_of_trivial_steps_lets_the_loop_run(world: World) -> None:
    """Steps that end as they start do not make their handler wait, yet the worker's
    loop still gets a turn every few steps (lease renewals, other runs)."""
    steps = 64

    async def scenario() -> int:
        run = await start(wf_helpers.sequential, steps, world=world)
        turns = 0
        stop = asyncio.Event()

        async def count_turns() -> None:
            nonlocal turns
            while not stop.is_set():
                turns += 1
                await asyncio.sleep(0)

        counter = asyncio.create_task(count_turns())
        worker = Worker(world=world, poll_interval=0.01, sweep_interval=0, flow_interval=0)
        try:
            await worker.drain(timeout=20)
        finally:
            stop.set()
            await counter
        assert await run.result(timeout=1) == sum(range(steps))
        return turns

    assert _run(scenario()) >= steps // 8


def test_a_step_that_ends_as_it_starts_is_fed_with_its_creation(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outcome of an inline step that ended as it started is fed to the session
    together with the step's logged events (``Orchestrator._create_work``): a run of
    N such steps is fed N + 1 times (its start, then one feed per step), not 2N + 1,
    and its log is the one two feeds per step write."""
    feeds = 0
    real_feed = ReplaySession.feed

    def counted(session: ReplaySession, events: Sequence[Event]) -> Any:
        nonlocal feeds
        feeds += 1
        return real_feed(session, events)

    monkeypatch.setattr(ReplaySession, "feed", counted)
    run = _run(_start_and_finish(world, wf_helpers.sequential, 5))
    assert _run(run.result(timeout=1)) == sum(range(5))
    assert feeds == 5 + 1
    step = ["step_created", "step_started", "step_completed"]
    assert _types(world, run.run_id) == ["run_created", "run_started", *step * 5, "run_completed"]


def test_a_wait_due_at_once_is_completed_before_a_finished_step(world: World) -> None:
    """A wait created with an inline step that ended as it started, and due at once
    (the workflow's clock lags the wall clock), is completed first, as before: the
    step's outcome is not fed with the creation events then."""

    async def _tick() -> str:
        return "tick"

    tick = wf_helpers.step("tick_with_due_wait", _tick)

    async def _step_and_wait() -> list[str]:
        return list(await asyncio.gather(tick(), asyncio.sleep(1e-6, "slept")))

    step_and_wait = wf_helpers.workflow("step_and_due_wait", _step_and_wait)
    run = _run(_start_and_finish(world, step_and_wait))
    assert _run(run.result(timeout=1)) == ["tick", "slept"]
    outcomes = [k for k in _types(world, run.run_id) if k in ("wait_completed", "step_completed")]
    assert outcomes == ["wait_completed", "step_completed"]


def test_finished_steps_are_taken_at_once_only_when_nothing_comes_first() -> None:
    """A handler takes its finished inline steps' outcomes right after a write only
    when its next turns would do nothing else first: no due wait to complete, no
    nudge to read, and not on the turn on which it lets the loop run."""
    state = RunState(run=placeholder_run("wrun_taken"))
    assert not state.takes_finished_at_once()  # nothing finished
    state.finished_inline.append("step_1")
    state.open_waits["wait_1"] = utc_now()
    assert not state.takes_finished_at_once()  # its wait is completed first
    state.open_waits.clear()
    state.log_may_have_news = True
    assert not state.takes_finished_at_once()  # the log is read first
    state.log_may_have_news = False
    taken = [state.takes_finished_at_once() for _ in range(MOST_STEPS_WITHOUT_WAIT)]
    assert taken == [True] * (MOST_STEPS_WITHOUT_WAIT - 1) + [False]
    assert state.steps_without_wait == MOST_STEPS_WITHOUT_WAIT - 1  # wait_for_news counts on
