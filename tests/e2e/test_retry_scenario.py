"""SCENARIO 38: a run failed with REPLAY_DIVERGENCE; the code is fixed; ``wfkit retry RUN``.

v1 runs leave a run sleeping; v2 changes the step before the sleep, so the run's
replay diverges and fails (REPLAY_DIVERGENCE; the failure also released its sleep).
v3 keeps the new step behind ``patched()``; ``wfkit retry RUN`` exits 0, the run
sleeps again, completes with the old branch's result, its log shows one run_failed
followed by run_retried, and ``wfkit verify`` is clean. Retrying a run that is not
failed is refused and writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.code_change import WORLDS, project_for, wait_until

V1 = """
from wfkit import patched, sleep


async def step_a(x: str) -> str:
    "use step"
    return f"a-{x}"


async def step_b(x: str) -> str:
    "use step"
    return f"b-{x}"


async def flow(x: str) -> dict[str, str]:
    "use workflow"
    a = await step_a(x)
    await sleep(3)
    return {"a": a}
"""
BROKEN = V1.replace("    a = await step_a(x)\n", "    a = await step_b(x)\n")
FIXED = V1.replace(
    "    a = await step_a(x)\n",
    '    a = await step_b(x) if patched("use-b") else await step_a(x)\n',
)


@pytest.mark.slow
@pytest.mark.parametrize("world_kind", WORLDS)
def test_a_diverged_run_retried_on_fixed_code_completes(tmp_path: Path, world_kind: str) -> None:
    with project_for(tmp_path, world_kind, V1) as project:
        world = project.world
        with project.worker():
            (run_id,) = project.start("o1")
            wait_until(lambda: "wait_created" in project.kinds(run_id), what="the sleep")

        project.write(BROKEN)
        with project.worker():
            wait_until(
                lambda: world.runs.get(run_id).status == "failed", timeout=60, what="the failure"
            )
        failed = world.runs.get(run_id)
        assert failed.error is not None
        assert project.kinds(run_id).count("run_failed") == 1
        failure = next(e for e in world.events.list(run_id) if e.event_type == "run_failed")
        assert failure.data["error_code"] == "REPLAY_DIVERGENCE"
        # the failure released the sleep without an event
        assert [w.status for w in world.waits.list(run_id)] == ["completed"]

        project.write(FIXED)
        retried = project.python("-m", "wfkit", "retry", run_id)
        assert retried.returncode == 0, retried.stdout + retried.stderr
        assert world.runs.get(run_id).status == "running"
        assert [w.status for w in world.waits.list(run_id)] == ["waiting"]  # reopened
        with project.worker():
            assert project.results(run_id) == ['{"a": "a-o1"}']

        kinds = project.kinds(run_id)
        assert kinds.count("run_failed") == 1 and kinds.count("run_retried") == 1
        assert kinds.index("run_retried") == kinds.index("run_failed") + 1
        assert kinds[-1] == "run_completed" and "patch_marked" not in kinds
        assert kinds.count("wait_completed") == 1  # the reopened sleep, completed by its event
        verified = project.python("-m", "wfkit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr

        # a completed run is not retried: one clear line, exit 1, nothing written
        before = project.kinds(run_id)
        again = project.python("-m", "wfkit", "retry", run_id)
        assert again.returncode == 1
        assert again.stderr.strip() == (
            f"wfkit retry: run_retried refused: run {run_id!r} is completed; "
            "only a failed run can be retried"
        )
        assert project.kinds(run_id) == before
