"""``wfkit.patched``: old logs replay the old branch, new runs take (and record) the new one.

Each test records a log with one version of a workflow (the simulated orchestrator
plays it), then replays it against a version with a ``patched()`` check, as a
worker does after a deploy; or records with the patched version and checks that
the marker lands before the new branch's calls and that replays agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from replay_log import Log, Simulator, assert_paths_agree, full_replay, make_run

from wfkit.runtime import gen
from wfkit.runtime.api.workflow import patched, sleep
from wfkit.runtime.errors import NotInWorkflowError
from wfkit.runtime.replay.session import Completed, Outcome, ReplaySession, Suspended

ADD = "step//./t//add"
EXTRA = "step//./t//extra"
add = gen.step_proxy(ADD, "add")
extra = gen.step_proxy(EXTRA, "extra")
STEPS: dict[str, Callable[..., Any]] = {ADD: lambda a, b=0: a + b, EXTRA: lambda x: x * 100}


async def v1(x: int) -> int:
    a = await add(x, 1)
    await sleep(10)
    return await add(a, 1)


async def v2(x: int) -> int:
    a = await add(x, 1)
    if patched("extra-step"):
        a = await extra(a)
    await sleep(10)
    return await add(a, 1)


def played(workflow: Callable[..., Any], **options: Any) -> Simulator:
    sim = Simulator(workflow, args=(1,), steps=STEPS, **options)
    assert isinstance(sim.play(), Completed)
    return sim


def kinds(events: Any) -> list[str]:
    return [
        e.event_type
        + (":" + e.data["patch_id"] if e.event_type == "patch_marked" else "")
        + (":" + e.data["step_name"].rpartition("//")[2] if e.event_type == "step_created" else "")
        for e in events
    ]


def completed(outcome: Outcome) -> Any:
    assert isinstance(outcome, Completed), outcome
    return outcome.value


def test_old_log_replays_the_old_branch() -> None:
    log = played(v1).log.events
    assert "patch_marked" not in kinds(log)
    assert completed(full_replay(v2, log, (1,))) == 3  # no extra step: (1+1)+1


def test_old_run_suspended_mid_sleep_continues_on_the_old_branch() -> None:
    """A v1 run that was sleeping when v2 was deployed: v2 finishes it the v1 way."""
    log = [e for e in played(v1).log.events]
    # Cut after the wake-up (the simulator schedules only the waits it created).
    cut = kinds(log).index("wait_completed") + 1
    sim = Simulator(v2, args=(1,), steps=STEPS)
    sim.log.events = list(log[:cut])
    sim.log.now = log[cut - 1].created_at
    assert completed(sim.play()) == 3
    assert "patch_marked" not in kinds(sim.log.events)


def test_new_run_takes_the_new_branch_and_records_the_marker_before_it() -> None:
    sim = played(v2)
    assert completed(sim.outcomes[-1]) == 201  # (1+1)*100+1
    assert kinds(sim.log.events)[:6] == [
        "run_created",
        "run_started",
        "step_created:add",
        "step_started",
        "step_completed",
        "patch_marked:extra-step",
    ]
    assert kinds(sim.log.events)[6] == "step_created:extra"
    assert completed(full_replay(v2, sim.log.events, (1,))) == 201
    assert_paths_agree(v2, sim, (1,))


@pytest.mark.parametrize("every_round", [True, False])
def test_replay_cache_off_gives_the_same_log(every_round: bool) -> None:
    """A worker without its replay cache replays from the log on every round."""
    cached = played(v2)
    sim = Simulator(v2, args=(1,), steps=STEPS)
    # every round, or only every other round (a cache that evicts now and then)
    assert completed(sim.play(restart=lambda n: every_round or n % 2 == 0)) == 201
    assert sim.restarts > 0
    assert kinds(sim.log.events) == kinds(cached.log.events)


def test_answer_is_kept_for_the_run() -> None:
    """A second check of the same id agrees with the first, even where the log ends."""
    seen: list[bool] = []

    async def twice() -> int:
        a = await add(1, 1)
        seen.append(patched("p"))
        b = await add(a, 1)
        seen.append(patched("p"))
        return b

    # Recorded by code without the check: first answer False, kept False at the frontier.
    old = played_log_of(lambda: _plain_two_adds())
    outcome = full_replay(twice, old)
    assert isinstance(outcome, Completed)
    assert seen == [False, False]


async def _plain_two_adds() -> int:
    a = await add(1, 1)
    return await add(a, 1)


def played_log_of(workflow: Callable[[], Any]) -> Any:
    sim = Simulator(workflow, steps=STEPS)
    assert isinstance(sim.play(), Completed)
    return sim.log.events


def test_first_line_patch_in_a_new_run() -> None:
    async def first() -> int:
        if patched("start"):
            return await extra(2)
        return await add(2, 0)

    sim = Simulator(first, steps=STEPS)
    assert completed(sim.play()) == 200
    assert kinds(sim.log.events)[2:4] == ["patch_marked:start", "step_created:extra"]
    assert_paths_agree(first, sim)
    # A log from before the patch (it starts with the add step) keeps the old branch.
    assert completed(full_replay(first, played_log_of(lambda: add(2, 0)))) == 2


async def gather_v1() -> list[int]:
    return list(await asyncio.gather(branch_v1(1), branch_v1(2)))


async def branch_v1(n: int) -> int:
    a = await add(n, 0)
    return await add(a, 10)


async def gather_v2() -> list[int]:
    return list(await asyncio.gather(branch_v2(1), branch_v2(2)))


async def branch_v2(n: int) -> int:
    a = await add(n, 0)
    if patched(f"branch-{n}"):
        a = await extra(a)
    return await add(a, 10)


async def taskgroup_v2() -> list[int]:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(branch_v2(n)) for n in (1, 2)]
    return [t.result() for t in tasks]


def test_gather_branches_old_log_and_new_run() -> None:
    old = played_log_of(gather_v1)
    assert completed(full_replay(gather_v2, old)) == [11, 12]
    sim = Simulator(gather_v2, steps=STEPS)
    assert completed(sim.play()) == [110, 210]
    assert kinds(sim.log.events).count("patch_marked:branch-1") == 1
    assert kinds(sim.log.events).count("patch_marked:branch-2") == 1
    assert_paths_agree(gather_v2, sim)


def test_taskgroup_branches_new_run_and_cache_off() -> None:
    sim = Simulator(taskgroup_v2, steps=STEPS)
    assert completed(sim.play()) == [110, 210]
    assert_paths_agree(taskgroup_v2, sim)
    nocache = Simulator(taskgroup_v2, steps=STEPS)
    assert completed(nocache.play(restart=lambda _r: True)) == [110, 210]
    assert kinds(nocache.log.events) == kinds(sim.log.events)
    assert completed(full_replay(taskgroup_v2, played_log_of(gather_v1))) == [11, 12]


def test_one_branch_reaches_the_frontier_while_another_has_events_left() -> None:
    """Branch 1's step finishes before branch 2's: each answer follows its own point."""
    sim = Simulator(gather_v2, steps=STEPS, durations={ADD: lambda a, b=0: float(a)})
    assert completed(sim.play()) == [110, 210]
    assert_paths_agree(gather_v2, sim)


def test_suspension_carries_pending_patches_until_the_marker_is_fed() -> None:
    async def wf() -> int:
        if patched("p"):
            return await extra(1)
        return 0

    log = Log()
    session = ReplaySession(wf, make_run(), args=(), kwargs={})
    try:
        outcome = session.feed(log.events)
        assert isinstance(outcome, Suspended)
        assert outcome.patches == ("p",)
        assert session.pending_patches == ("p",)
        marker = log.add("patch_marked", data={"patch_id": "p"})
        outcome = session.feed([marker])
        assert isinstance(outcome, Suspended) and outcome.patches == ()
        assert session.pending_patches == ()
    finally:
        session.close()


def test_patched_outside_a_workflow() -> None:
    with pytest.raises(NotInWorkflowError, match="patched"):
        patched("x")


def test_patch_id_must_be_a_string() -> None:
    async def wf() -> bool:
        return patched("")

    outcome = full_replay(wf, Log().events)
    assert not isinstance(outcome, Completed)
