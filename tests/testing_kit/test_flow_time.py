"""Run deadlines and cron schedules follow the testing kit's virtual clock (issue 13): a
day-long deadline or a daily schedule is tested in well under the real seconds
``result``'s timeout allows, with the clock stopping at each due timer."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

import wfkit
from wfkit import WorkflowRunFailedError
from wfkit.runtime.errors import RunDeadlineExceededError
from wfkit.testing import WorkflowEnv


def _shop() -> Any:
    from shop import orders  # importable once the wfkit_build fixture ran

    return orders


def nine_oclocks(after: datetime, until: datetime) -> list[datetime]:
    """Every 09:00 UTC in ``(after, until]``: the ticks of ``0 9 * * *``."""
    tick = after.replace(hour=9, minute=0, second=0, microsecond=0)
    ticks = []
    while tick <= until:
        if tick > after:
            ticks.append(tick)
        tick += timedelta(days=1)
    return ticks


def report_ticks(env: WorkflowEnv) -> list[str]:
    """The idempotency keys of the schedule's runs, each waited for until it completed."""
    runs = [r for r in env.world.runs.list(limit=100) if r.workflow_name.endswith("daily_report")]
    for run in runs:
        assert env.result(run.run_id, timeout=10) == "report-x"
    return sorted(r.idempotency_key or "" for r in runs)


def test_a_day_long_deadline_fails_a_run_waiting_on_a_hook(wf_env: WorkflowEnv) -> None:
    run = wf_env.start(_shop().approval, "o-late", deadline=timedelta(days=1))
    with pytest.raises(WorkflowRunFailedError) as failed:
        wf_env.result(run, timeout=10)  # a day of real time would time this out
    assert failed.value.error_code == "RUN_DEADLINE_EXCEEDED"
    assert isinstance(failed.value.cause, RunDeadlineExceededError)
    record = wf_env.world.runs.get(run.run_id)
    assert record.deadline_at is not None and record.completed_at is not None
    assert record.completed_at >= record.deadline_at
    # The clock stopped once the run ended, not at the 30-day timeout it left behind.
    assert wf_env.now() < record.deadline_at + timedelta(days=1)


def test_a_deadline_far_enough_leaves_the_run_alone(wf_env: WorkflowEnv) -> None:
    run = wf_env.start(_shop().checkout, "o-in-time", 10, deadline=timedelta(days=2))
    assert wf_env.result(run, timeout=10)["waited_seconds"] >= 24 * 3600


def test_a_daily_schedule_fires_each_tick_once_as_skip_passes_it(wf_env: WorkflowEnv) -> None:
    shop = _shop()
    created = wfkit.schedule_sync(
        shop.daily_report, cron="0 9 * * *", args=["x"], id="daily", world=wf_env.world
    ).created_at
    wf_env.skip("3d")
    ticks = nine_oclocks(created, wf_env.now())
    assert len(ticks) == 3
    assert report_ticks(wf_env) == [f"schedule:daily:{t.isoformat()}" for t in ticks]
    wf_env.skip("20h")  # again, with or without a 09:00 in it: one run per tick passed
    ticks = nine_oclocks(created, wf_env.now())
    assert report_ticks(wf_env) == [f"schedule:daily:{t.isoformat()}" for t in ticks]


def test_a_daily_schedule_fires_while_a_test_waits_on_a_sleeping_run(
    wf_env: WorkflowEnv,
) -> None:
    shop = _shop()
    created = wfkit.schedule_sync(
        shop.daily_report, cron="0 9 * * *", args=["x"], id="daily", world=wf_env.world
    ).created_at
    assert wf_env.run(shop.checkout, "o-12", 10, timeout=10)["waited_seconds"] >= 24 * 3600
    ticks = nine_oclocks(created, wf_env.now())
    assert len(ticks) == 1  # one 09:00 in the day the checkout slept
    assert report_ticks(wf_env) == [f"schedule:daily:{ticks[0].isoformat()}"]
