"""SCENARIO 36: v2 wraps a new step in ``if patched("extra-step")``; only v2 workers run.

v1 runs start on v1 workers and are left sleeping; the project switches to v2 (rebuilt,
workers restarted on v2 only). The v1 runs replay the old branch on v2 code and complete
with v1's result shape; runs started on v2 take the new branch, and their logs record
``patch_marked`` before the new step.
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


async def flow(x: str) -> dict[str, str]:
    "use workflow"
    a = await step_a(x)
    await sleep(3)
    return {"a": a}
"""

V2 = (
    V1.replace(
        "    await sleep(3)\n",
        '    if patched("extra-step"):\n'
        '        return {"a": a, "extra": await extra(x), "slept": str(await sleep(3))}\n'
        "    await sleep(3)\n",
    )
    + """

async def extra(x: str) -> str:
    "use step"
    return f"extra-{x}"
"""
)


@pytest.mark.slow
@pytest.mark.parametrize("world_kind", WORLDS)
def test_old_runs_keep_the_old_branch_and_new_runs_take_the_patch(
    tmp_path: Path, world_kind: str
) -> None:
    with project_for(tmp_path, world_kind, V1) as project:
        world = project.world
        with project.worker():
            old = project.start("o1", "o2")
            wait_until(
                lambda: all("wait_created" in project.kinds(r) for r in old),
                what="the v1 runs to reach their sleep",
            )
        # the v1 worker is gone while the runs sleep: v2 code finishes them
        assert [world.runs.get(r).status for r in old] == ["running", "running"]

        project.write(V2)
        with project.worker():
            new = project.start("n1")
            results = project.results(*old, *new)

        assert results == [
            '{"a": "a-o1"}',
            '{"a": "a-o2"}',
            '{"a": "a-n1", "extra": "extra-n1", "slept": "None"}',
        ]
        for run_id in old:
            kinds = project.kinds(run_id)
            assert "patch_marked" not in kinds
            names = [s.step_name.rsplit("//", 1)[-1] for s in world.steps.list(run_id)]
            assert names == ["step_a"]
            assert kinds[-1] == "run_completed"
        new_events = list(world.events.list(new[0]))
        kinds = [e.event_type for e in new_events]
        marked = kinds.index("patch_marked")
        assert new_events[marked].data == {"patch_id": "extra-step"}
        created = [
            (i, e.data["step_name"])
            for i, e in enumerate(new_events)
            if e.event_type == "step_created"
        ]
        assert len(created) == 2 and created[0][0] < marked < created[1][0]
        assert created[1][1].endswith("//extra") and created[0][1].endswith("//step_a")
        verified = project.python("-m", "wfkit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
