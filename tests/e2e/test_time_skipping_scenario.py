"""SCENARIOS 39: with the testing kit, a workflow that sleeps a day between two steps
finishes in well under a second of wall time, and its clock shows the day passed."""

from __future__ import annotations

import time

import pytest

from examples import orders
from examples.e2e import timers
from wfkit.testing import WorkflowEnv

DAY = 24 * 3600


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("memory", marks=pytest.mark.wfkit(world="memory")),
        pytest.param("local", marks=pytest.mark.wfkit(world="local")),
    ],
)
def test_39_a_day_long_sleep_in_well_under_a_second(kind: str, wf_env: WorkflowEnv) -> None:
    began = time.monotonic()
    run = wf_env.start(timers.sleeper, DAY)
    result = wf_env.result(run)
    wall = time.monotonic() - began
    assert result["elapsed"] >= DAY  # the workflow's clock
    assert wall < 1.0, f"{wall:.3f} s"
    (wait,) = wf_env.world.waits.list(run.run_id)
    assert wait.status == "completed"


def test_39_the_demo_order_with_a_retry_a_sleep_and_an_approval(wf_env: WorkflowEnv) -> None:
    run = wf_env.start(orders.process_order, "o-39", ["book"], 1200)
    wf_env.resume_hook("approve:o-39", {"ok": True, "by": "ops"})
    result = wf_env.result(run)
    assert result["shipment"] == "shipment-o-39-approved-by-ops"
    wf_env.assert_steps(run, ["reserve_stock", "charge_card", "ship"])
