"""Runs wfkit 0.1.0 left in flight have no deployment; workers of today serve them.

``databases/local-0.1.db`` holds a run waiting on a hook and a run queued under 0.1.0's
queue name that no worker picked up. A worker of today with the app's build (a
deployment of its own) serves both as *unpinned* runs, with that build.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

import wfbuild
from wfkit.runtime.api.client import get_run, resume_hook
from wfkit.runtime.engine.worker import Worker
from wfkit.runtime.loading.loader import load_build
from wfkit.runtime.loading.project import find_root
from wfkit.runtime.tools.deployments import local_deployments, pending_reason
from wfkit.worlds.local import LocalWorld

HERE = Path(__file__).resolve().parent
QUEUED = "wrun_01M9767S78E892CCB771EYTJ6E"  # errors_cross("sku-q"), never picked up
HOOKED = "wrun_01M9767QP0FHAFFWHVPDKRNHFW"  # order_flow("o-inflight"), waiting on its hook


@pytest.fixture
def golden_world(tmp_path: Path) -> LocalWorld:
    project = tmp_path / "app"
    shutil.copytree(HERE / "app", project)
    out = project / ".wfkit" / "build"
    wfbuild.build(root=project, out=out)
    load_build(out, root=project)
    shutil.copy(HERE / "databases" / "local-0.1.db", tmp_path / "world.db")
    return LocalWorld.from_spec(f"sqlite:///{tmp_path / 'world.db'}")


def test_a_worker_of_today_serves_the_runs_wfkit_0_1_left_in_flight(
    golden_world: LocalWorld,
) -> None:
    world = golden_world
    queued = world.runs.get(QUEUED)
    assert (queued.status, queued.deployment_id) == ("pending", "")
    reason = pending_reason(queued, local_deployments(find_root()))
    assert reason is not None and reason.startswith("waiting for a worker (unpinned run")

    async def scenario() -> tuple[object, object]:
        worker = Worker(world=world, poll_interval=0.01)
        await asyncio.wait_for(worker.run_until_complete(QUEUED), 30)
        await resume_hook("golden-approve:o-inflight", {"ok": True, "by": "bo"}, world=world)
        await asyncio.wait_for(worker.run_until_complete(HOOKED), 30)
        return (
            await get_run(QUEUED, world=world).result(timeout=5),
            await get_run(HOOKED, world=world).result(timeout=5),
        )

    try:
        errors, order = asyncio.run(scenario())
    finally:
        world.close()
    assert errors == {"left": ("sku-q", 0), "refused": "refused: policy"}
    assert isinstance(order, dict) and order["approval"] == {"ok": True, "by": "bo"}
    assert order["receipt"].order_id == "o-inflight"
