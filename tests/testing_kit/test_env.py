"""``WorkflowEnv`` and the ``wf_env`` fixture, in this process, on the example project."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from wfkit import HookNotFoundError, RunNotFoundError, WorkflowRunFailedError, get_world
from wfkit.testing import WorkflowEnv, assert_replays, create_test_world
from wfkit.worlds.base import SYSTEM_CLOCK, current_clock


def _shop() -> Any:
    from shop import orders  # importable once the wfkit_build fixture ran

    return orders


def test_a_day_long_sleep_takes_well_under_a_second(wf_env: WorkflowEnv) -> None:
    began = time.monotonic()
    result = wf_env.run(_shop().checkout, "o-1", 10)
    assert time.monotonic() - began < 1.0
    assert result["waited_seconds"] >= 24 * 3600


@pytest.mark.wfkit(real_time=True)
def test_real_time_marker_leaves_the_clock_alone(wf_env: WorkflowEnv) -> None:
    assert not wf_env.time_skipping
    assert current_clock() is SYSTEM_CLOCK
    run = wf_env.start(_shop().checkout, "o-2", 10)
    with pytest.raises(TimeoutError, match=r"did not end within 0.3 s \(status running\)"):
        wf_env.result(run, timeout=0.3)
    with pytest.raises(RuntimeError, match="needs time skipping"):
        wf_env.skip("1d")


def test_the_fixture_binds_the_process_world(wf_env: WorkflowEnv) -> None:
    assert get_world() is wf_env.world


def test_assert_steps_failure_shows_the_actual_sequence(wf_env: WorkflowEnv) -> None:
    run = wf_env.start(_shop().checkout, "o-3", 10)
    wf_env.result(run)
    wf_env.assert_steps(run, ["charge", "ship"])
    wf_env.assert_steps(run, ["step//./shop/orders//charge", "ship"])
    with pytest.raises(AssertionError) as failure:
        wf_env.assert_steps(run, ["charge", "refund"])
    message = str(failure.value)
    assert "called steps ['charge', 'ship'], expected ['charge', 'refund']" in message
    assert "first difference at #2: 'ship' instead of 'refund'" in message
    assert "wait_completed" in message  # the timeline follows


def test_mock_by_function_replaces_the_body_and_records_the_call(wf_env: WorkflowEnv) -> None:
    shop = _shop()
    mock = wf_env.mock_step(shop.ship, lambda order_id: f"drone-{order_id}")
    run = wf_env.start(shop.checkout, "o-4", 10)
    assert wf_env.result(run)["shipment"] == "drone-o-4"
    assert mock.call_count == 1 and mock.calls[0].args == ("o-4",)
    completed = [e for e in wf_env.events(run) if e.event_type == "step_completed"]
    assert len(completed) == 2  # the mocked step is a step in the log like any other


def test_mocks_end_with_the_environment(tmp_path: Path, wfkit_build: Path) -> None:
    shop = _shop()
    with WorkflowEnv(create_test_world("memory")) as env:
        env.mock_step(shop.charge, lambda order_id, cents: "mocked")
        assert env.run(shop.checkout, "o-5", 1)["receipt"] == "mocked"
    with WorkflowEnv(create_test_world("memory")) as env:
        assert env.run(shop.checkout, "o-6", 1)["receipt"] == "receipt-o-6-1"


def test_a_mock_that_raises_fails_the_step_with_its_error(wf_env: WorkflowEnv) -> None:
    def declined(order_id: str, cents: int) -> str:
        raise ValueError("declined")

    mock = wf_env.mock_step(_shop().charge, declined)
    with pytest.raises(WorkflowRunFailedError, match="declined"):
        wf_env.run(_shop().checkout, "o-7", 1)
    assert mock.call_count == 4  # the step's retries (3) apply to the mock too


def test_mock_step_refuses_what_is_not_a_step(wf_env: WorkflowEnv) -> None:
    with pytest.raises(ValueError, match="is not a step in the loaded build"):
        wf_env.mock_step(json.dumps, lambda *a: None)
    with pytest.raises(ValueError, match="is not a registered step ID"):
        wf_env.mock_step("step//./shop/orders//nope", lambda: None)
    with pytest.raises(ValueError, match="must be callable"):
        wf_env.mock_step(_shop().charge, "receipt")


def test_hook_race_and_timeout(wf_env: WorkflowEnv) -> None:
    shop = _shop()
    run = wf_env.start(shop.approval, "o-8")
    hook = wf_env.resume_hook("approve:o-8", {"ok": True})
    assert hook.token == "approve:o-8"
    assert wf_env.result(run) == "approved"
    assert wf_env.run(shop.approval, "o-9") == "expired"
    with pytest.raises(HookNotFoundError, match="no hook with token 'nope' appeared"):
        wf_env.wait_for_hook("nope", timeout=0.05)


def test_stream_helper_reads_every_chunk(wf_env: WorkflowEnv) -> None:
    run = wf_env.start(_shop().tracked, "o-10")
    assert [c["stage"] for c in wf_env.stream(run)] == ["packed", "shipped"]


def test_golden_logs_replay_and_a_changed_log_diverges(wf_env: WorkflowEnv, tmp_path: Path) -> None:
    run = wf_env.start(_shop().checkout, "o-11", 10)
    wf_env.result(run)
    golden = wf_env.export(run, tmp_path / "golden.json")
    assert_replays(golden)
    # A log recorded by a version whose workflow refunded where the code now charges.
    data = json.loads(golden.read_text())
    for event in data["events"]:
        if event["event_type"] == "step_created" and event["data"]["step_name"].endswith("charge"):
            event["data"]["step_name"] = "step//./shop/orders//refund"
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))
    with pytest.raises(AssertionError, match=r"(?s)refund.*charge|charge.*refund"):
        assert_replays(changed)


def test_golden_replay_refuses_bad_input(tmp_path: Path, wfkit_build: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such golden log"):
        assert_replays(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not a wfkit run log"):
        assert_replays(bad)


def test_teardown_leaves_no_thread_and_restores_everything(wfkit_build: Path) -> None:
    before = set(threading.enumerate())
    with WorkflowEnv(create_test_world("memory")) as env:
        assert env.run(_shop().checkout, "o-12", 1)["shipment"] == "shipment-o-12"
        assert current_clock() is env.clock
    assert set(threading.enumerate()) <= before
    assert current_clock() is SYSTEM_CLOCK
    with pytest.raises(RuntimeError, match="closed"):
        env.start(_shop().checkout, "o-13", 1)


def test_postgres_cannot_skip_time() -> None:
    class _Queue:
        pass

    class _World:
        name = "postgres"
        queue = _Queue()

    with pytest.raises(ValueError, match="time skipping needs the memory or local world"):
        WorkflowEnv(_World())  # type: ignore[arg-type]


def test_result_of_an_unknown_run_says_so_and_the_worker_lives_on(wf_env: WorkflowEnv) -> None:
    with pytest.raises(RunNotFoundError):
        wf_env.result("wrun_nope", timeout=5)
    assert wf_env.run(_shop().checkout, "o-13", 10)["receipt"] == "receipt-o-13-10"
