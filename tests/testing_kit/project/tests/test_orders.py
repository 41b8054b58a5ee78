"""The shop's tests, written against the wfkit testing kit (the wf_env fixture)."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from shop.orders import (
    approval,
    charge,
    charge_with_retry,
    checkout,
    refund,
    tracked,
)

DAY = 24 * 3600


def test_checkout_sleeps_a_day_in_no_time(wf_env):
    began = time.monotonic()
    result = wf_env.run(checkout, "o-1", 1999)
    wall = time.monotonic() - began
    print(f"WALL checkout {wall:.3f}s")
    assert result["receipt"] == "receipt-o-1-1999"
    assert result["waited_seconds"] >= DAY
    assert wall < 1.0
    # the log's timestamps say a day passed too
    run_id = wf_env.start(checkout, "o-2", 5).run_id
    wf_env.result(run_id)
    events = wf_env.events(run_id)
    kinds = [e.event_type for e in events]
    charged = events[kinds.index("step_completed")]
    created = events[kinds.index("wait_created")]
    completed = events[kinds.index("wait_completed")]
    resume_at = datetime.fromisoformat(created.data["resume_at"])
    assert (resume_at - charged.created_at).total_seconds() >= DAY
    assert completed.created_at >= resume_at


def test_retry_delay_of_an_hour_is_skipped(wf_env):
    began = time.monotonic()
    result = wf_env.run(charge_with_retry, "o-3")
    wall = time.monotonic() - began
    print(f"WALL retry {wall:.3f}s")
    assert result["attempt"] == 2
    assert result["waited_seconds"] >= 3600
    assert wall < 1.0
    run = wf_env.start(charge_with_retry, "o-4")
    wf_env.result(run)
    retrying = [e for e in wf_env.events(run) if e.event_type == "step_retrying"]
    assert len(retrying) == 1


def test_hook_resumed_before_its_30_day_timeout(wf_env):
    run = wf_env.start(approval, "o-5")
    wf_env.resume_hook("approve:o-5", {"ok": True})
    assert wf_env.result(run) == "approved"


def test_30_day_timeout_fires_when_nobody_answers(wf_env):
    began = time.monotonic()
    assert wf_env.run(approval, "o-6") == "expired"
    wall = time.monotonic() - began
    print(f"WALL timeout {wall:.3f}s")
    assert wall < 1.0
    # the clock jumped to the timeout (30 days after the run started, a moment ago)
    assert wf_env.now() - datetime.now(UTC) > timedelta(days=29, hours=23)


def test_mocked_charge_is_recorded_as_a_step(wf_env):
    mock = wf_env.mock_step(charge, lambda order_id, cents: f"fake-{order_id}")
    run = wf_env.start(checkout, "o-7", 100)
    assert wf_env.result(run)["receipt"] == "fake-o-7"
    assert [c.args for c in mock.calls] == [("o-7", 100)]
    wf_env.assert_steps(run, ["charge", "ship"])


def test_async_mock_by_step_id(wf_env):
    async def declined(order_id, cents):
        raise ValueError("card declined")

    wf_env.mock_step("step//./shop/orders//charge", declined)
    with pytest.raises(Exception, match="card declined"):
        wf_env.run(checkout, "o-8", 100)


def test_mock_is_gone_in_the_next_test(wf_env):
    assert wf_env.run(checkout, "o-9", 1)["receipt"] == "receipt-o-9-1"


def test_stream_is_read_to_its_end(wf_env):
    run = wf_env.start(tracked, "o-10")
    assert wf_env.stream(run) == [
        {"order": "o-10", "stage": "packed"},
        {"order": "o-10", "stage": "shipped"},
    ]
    assert wf_env.result(run) == "tracked"


@pytest.mark.wfkit(real_time=True)
def test_real_time_when_asked(wf_env):
    assert not wf_env.time_skipping
    run = wf_env.start(approval, "o-11")
    wf_env.resume_hook("approve:o-11", {"ok": False})
    assert wf_env.result(run) == "rejected"


@pytest.mark.wfkit(world="local")
def test_local_world_skips_time_too(wf_env):
    began = time.monotonic()
    assert wf_env.run(checkout, "o-12", 7)["waited_seconds"] >= DAY
    print(f"WALL local checkout {time.monotonic() - began:.3f}s")
    assert time.monotonic() - began < 1.0


def test_golden_log_replays(wf_env, tmp_path):
    run = wf_env.start(checkout, "o-13", 3)
    wf_env.result(run)
    golden = wf_env.export(run, tmp_path / "checkout.json")
    wf_env.assert_replays(golden)


def test_refund_is_never_called(wf_env):
    run = wf_env.start(checkout, "o-14", 3)
    wf_env.result(run)
    assert "refund" not in wf_env.steps(run)
    assert refund.__name__ == "refund"
