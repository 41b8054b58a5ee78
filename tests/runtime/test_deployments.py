"""Deployments: IDs, kept builds, two versions of one project in one worker, pinning and
queue routing (DESIGN.md §6a; SCENARIOS.md 35 runs end to end in tests/e2e/test_rollout.py)."""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.runtime.deploy_project import build, unique_package, write_version
from wfkit import DeploymentNotFoundError, InvalidBuildError, WorkflowRunFailedError
from wfkit.runtime.api.client import start
from wfkit.runtime.engine.messages import (
    STEP_QUEUE_PREFIX,
    WORKFLOW_QUEUE_PREFIX,
    deployment_queue_prefix,
    queue_deployment,
    queue_prefixes,
    step_message,
    workflow_message,
)
from wfkit.runtime.engine.worker import Worker
from wfkit.runtime.loading.deployments import (
    compute_deployment_id,
    is_deployment_id,
    keep_deployment,
    kept_deployments,
)
from wfkit.runtime.loading.loader import load_build, loaded_build
from wfkit.runtime.serialization import serialize_call
from wfkit.runtime.tools.deployments import local_deployments, pending_reason
from wfkit.worlds.base import EventRequest
from wfkit.worlds.memory import MemoryWorld

# --- deployment IDs -----------------------------------------------------------------------


def test_the_same_sources_give_the_same_id_in_any_place_and_rebuild(tmp_path: Path) -> None:
    package = unique_package()
    first, second = tmp_path / "laptop" / "app", tmp_path / "ci" / "checkout"
    for root in (first, second):
        write_version(root, package, "v1")
    deployment = compute_deployment_id(build(first))
    assert is_deployment_id(deployment) and deployment.startswith("d_") and len(deployment) == 26
    assert compute_deployment_id(build(second)) == deployment
    assert compute_deployment_id(build(first)) == deployment  # an unchanged rebuild
    shutil.copytree(first / ".wfkit" / "build", tmp_path / "artifact")
    assert compute_deployment_id(tmp_path / "artifact") == deployment


def test_a_changed_generated_module_changes_the_id_and_nothing_else_does(tmp_path: Path) -> None:
    package = unique_package()
    root = tmp_path / "app"
    write_version(root, package, "v1")
    v1 = compute_deployment_id(build(root))
    write_version(root, package, "v1", helper_mark="?")  # a module without directives
    assert compute_deployment_id(build(root)) == v1
    shutil.rmtree(root / ".wfkit" / "build" / "client")  # a wheel may ship without them
    assert compute_deployment_id(root / ".wfkit" / "build") == v1
    write_version(root, package, "v2")
    v2 = compute_deployment_id(build(root))
    assert v2 != v1
    models = root / package / "models.py"  # only a step body's text changes
    models.write_text(models.read_text().replace('f"{self.label}', 'f"{self.label} '))
    assert compute_deployment_id(build(root)) not in (v1, v2)


def test_an_incomplete_build_has_no_deployment_id(tmp_path: Path) -> None:
    package = unique_package()
    write_version(tmp_path, package, "v1")
    out = build(tmp_path)
    (out / "step" / package / "flows.py").unlink()
    with pytest.raises(InvalidBuildError, match=rf"missing step/{package}/flows.py"):
        compute_deployment_id(out)


# --- kept deployments ----------------------------------------------------------------------


def test_keeping_a_build_copies_it_with_its_sources_once(tmp_path: Path) -> None:
    package = unique_package()
    write_version(tmp_path, package, "v1")
    out = build(tmp_path)
    kept = keep_deployment(out, tmp_path)
    assert kept.path == tmp_path / ".wfkit" / "deployments" / kept.deployment_id
    assert kept.deployment_id == compute_deployment_id(out) == compute_deployment_id(kept.path)
    for mode in ("workflow", "step"):
        assert (kept.path / mode / package / "flows.py").is_file()
    source = kept.path / "source" / package / "flows.py"
    assert source.read_text() == (tmp_path / package / "flows.py").read_text()
    assert json.loads((kept.path / "deployment.json").read_text())["kept_from"] == str(out)
    assert (tmp_path / ".wfkit" / ".gitignore").read_text() == "*\n"
    again = keep_deployment(out, tmp_path)
    assert again == kept  # the same copy, kept once
    assert kept_deployments(tmp_path) == [kept]


def test_a_source_edited_after_its_build_is_not_kept_as_that_builds_source(
    tmp_path: Path,
) -> None:
    package = unique_package()
    write_version(tmp_path, package, "v1")
    out = build(tmp_path)
    (tmp_path / package / "flows.py").write_text("# edited, not rebuilt\n")
    kept = keep_deployment(out, tmp_path)
    assert not (kept.path / "source" / package / "flows.py").exists()
    assert (kept.path / "source" / package / "models.py").is_file()


# --- queue names ---------------------------------------------------------------------------


def test_unpinned_runs_keep_wfkit_0_1_queue_names_and_pinned_runs_get_their_own() -> None:
    workflow, step = "workflow//./app/flows//rollout", "step//./app/flows//finish"
    deployment = "d_" + "ab" * 12
    unpinned = workflow_message(workflow, "wrun_1", deployment_id="")
    assert unpinned.queue == "__wkf_workflow_workflow//./app/flows//rollout"
    assert step_message("wrun_1", "step_1", step, deployment_id="").queue == (
        "__wkf_step_step//./app/flows//finish"
    )
    pinned = workflow_message(workflow, "wrun_1", deployment_id=deployment)
    assert pinned.queue == f"__wkf_{deployment}_workflow_{workflow}"
    assert pinned.payload == unpinned.payload == {"run_id": "wrun_1"}
    pinned_step = step_message("wrun_1", "step_1", step, deployment_id=deployment).queue
    assert [queue_deployment(q) for q in (unpinned.queue, pinned.queue, pinned_step)] == [
        "",
        deployment,
        deployment,
    ]
    assert queue_deployment("someone_elses_queue") is None
    # A 0.1.0 worker (receiving by the unpinned prefixes) never takes a pinned run's message.
    assert not pinned.queue.startswith((WORKFLOW_QUEUE_PREFIX, STEP_QUEUE_PREFIX))
    assert queue_prefixes([deployment], serve_unpinned=False) == [
        deployment_queue_prefix(deployment)
    ]
    assert queue_prefixes([], serve_unpinned=True) == [WORKFLOW_QUEUE_PREFIX, STEP_QUEUE_PREFIX]


# --- two versions of one project in one process -------------------------------------------------


@dataclass
class TwoVersions:
    root: Path
    package: str
    v1: str
    v2: str
    v1_dir: Path
    v2_dir: Path
    flows: ModuleType
    models: ModuleType

    def workflow(self, name: str) -> str:
        return f"workflow//./{self.package}/flows//{name}"


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoVersions]:
    """v1 built and kept, then v2 built into ``.wfkit/build`` (the user's modules are
    v2's); both loaded into this process: v2 shared, v1 isolated (a kept copy)."""
    root = tmp_path_factory.mktemp("deployments") / "app"
    package = unique_package()
    write_version(root, package, "v1")
    kept_v1 = keep_deployment(build(root), root)
    write_version(root, package, "v2")
    v2_dir = build(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(root))
        load_build(v2_dir)
        load_build(kept_v1.path)
        yield TwoVersions(
            root,
            package,
            kept_v1.deployment_id,
            compute_deployment_id(v2_dir),
            kept_v1.path,
            v2_dir,
            importlib.import_module(f"{package}.flows"),
            importlib.import_module(f"{package}.models"),
        )


def test_the_second_build_of_a_project_loads_apart(two: TwoVersions) -> None:
    v1, v2 = loaded_build(two.v1), loaded_build(two.v2)
    assert v1 is not None and v2 is not None
    assert v1.isolated and not v2.isolated
    assert v1.prefix("step") == f"__wfkit_step__{two.v1}"
    assert v2.prefix("step") == "__wfkit_step__"


async def _work(world: Any, *run_ids: str, **options: Any) -> None:
    worker = Worker(world=world, poll_interval=0.01, **options)
    for run_id in run_ids:
        await asyncio.wait_for(worker.run_until_complete(run_id), 30)


def test_one_worker_runs_each_run_on_the_code_of_its_deployment(two: TwoVersions) -> None:
    world = MemoryWorld()

    async def scenario() -> tuple[Any, Any]:
        old = await start(two.flows.rollout, 1, world=world, deployment=two.v1)
        new = await start(two.flows.rollout, 2, world=world)  # "latest"
        await _work(world, old.run_id, new.run_id)
        return await old.result(timeout=5), await new.result(timeout=5)

    old, new = asyncio.run(scenario())
    # v1: no prepare step; its method step (calling super()) and VERSION are v1's own.
    assert (old["version"], old["box"].label) == ("v1", "1!@v1")
    assert (new["version"], new["box"].label) == ("v2", "20!@v2")
    assert type(old["box"]) is two.models.Box and type(new["box"]) is two.models.Box
    pinned = {r.deployment_id for r in world.runs.list()}
    assert pinned == {two.v1, two.v2}


def test_an_isolated_deployments_traceback_names_its_kept_source(two: TwoVersions) -> None:
    world = MemoryWorld()

    async def scenario() -> BaseException:
        run = await start(two.flows.breaks, 1, world=world, deployment=two.v1)
        await _work(world, run.run_id)
        with pytest.raises(WorkflowRunFailedError) as failed:
            await run.result(timeout=5)
        return failed.value

    failure = asyncio.run(scenario())
    assert isinstance(failure, WorkflowRunFailedError)
    kept_source = two.v1_dir / "source" / two.package / "flows.py"
    line = (
        kept_source.read_text().splitlines().index('    raise ValueError(f"failed in {VERSION}")')
    )
    assert str(failure.cause) == "failed in v1"
    assert f'File "{kept_source}", line {line + 1}, in fail_here' in failure.error["stack"]


def test_a_child_run_starts_on_its_parents_deployment(two: TwoVersions) -> None:
    world = MemoryWorld()

    async def scenario() -> list[tuple[str, str, Any]]:
        parents = [
            await start(two.flows.spawn, 3, world=world, deployment=two.v1),
            await start(two.flows.spawn, 4, world=world),
        ]
        await _work(world, *(p.run_id for p in parents))
        children = [await p.result(timeout=5) for p in parents]
        await _work(world, *children)
        return [
            (world.runs.get(p.run_id).deployment_id, world.runs.get(c).deployment_id, c)
            for p, c in zip(parents, children, strict=True)
        ]

    (v1_parent, v1_child, first), (v2_parent, v2_child, second) = asyncio.run(scenario())
    assert (v1_parent, v1_child) == (two.v1, two.v1)
    assert (v2_parent, v2_child) == (two.v2, two.v2)
    assert world.runs.get(first).status == world.runs.get(second).status == "completed"


def test_start_refuses_a_deployment_it_cannot_pin_and_writes_nothing(two: TwoVersions) -> None:
    world = MemoryWorld()
    with pytest.raises(ValueError, match="expected 'latest' or a deployment ID"):
        asyncio.run(start(two.flows.rollout, 1, world=world, deployment="v1"))
    unknown = "d_" + "0" * 24
    with pytest.raises(DeploymentNotFoundError, match=f"deployment {unknown} is not known here"):
        asyncio.run(start(two.flows.rollout, 1, world=world, deployment=unknown))
    assert world.runs.list() == []


def test_a_worker_leaves_other_deployments_runs_and_inspect_says_why(two: TwoVersions) -> None:
    world = MemoryWorld()

    async def scenario() -> tuple[Any, Any]:
        old = await start(two.flows.rollout, 1, world=world, deployment=two.v1)
        new = await start(two.flows.rollout, 2, world=world)
        await _work(world, new.run_id, builds=[two.v2_dir])
        return old, new

    old, new = asyncio.run(scenario())
    assert world.runs.get(new.run_id).status == "completed"
    waiting = world.runs.get(old.run_id)
    assert waiting.status == "pending"  # its message is there; this worker does not serve v1
    reason = pending_reason(waiting, local_deployments(two.root))
    assert reason is not None
    assert reason.startswith(f"waiting for a worker that serves deployment {two.v1}; pending for")
    assert reason.endswith("its build is here (kept): `wfkit worker` serves it")
    asyncio.run(_work(world, old.run_id, builds=[two.v1_dir]))
    assert world.runs.get(old.run_id).status == "completed"


def _start_unpinned(world: Any, workflow_id: str, *args: Any) -> str:
    """A run as wfkit 0.1.0 wrote it: no deployment, its message on 0.1.0's queue."""
    run_id = "wrun_unpinned" + workflow_id[-6:].replace("/", "")
    data = {
        "workflow_name": workflow_id,
        "input": serialize_call(args, {}),
        "deployment_id": "",
        "execution_context": {},
    }
    world.events.create_batch(
        run_id,
        [EventRequest(event_type="run_created", data=data)],
        messages=[workflow_message(workflow_id, run_id, deployment_id="")],
    )
    return run_id


def test_unpinned_runs_are_served_with_the_newest_deployment(two: TwoVersions) -> None:
    world = MemoryWorld()
    run_id = _start_unpinned(world, two.workflow("rollout"), 5)

    async def scenario() -> None:
        await Worker(world=world, serve_unpinned=False, poll_interval=0.01).drain(timeout=10)
        assert world.runs.get(run_id).status == "pending"
        await _work(world, run_id)

    asyncio.run(scenario())
    record = world.runs.get(run_id)
    assert record.status == "completed" and record.deployment_id == ""
    from wfkit.runtime.serialization import deserialize

    assert deserialize(record.output)["version"] == "v2"


def test_a_pinned_runs_message_on_an_unpinned_queue_runs_on_its_deployment(
    two: TwoVersions,
) -> None:
    """A wfkit 0.1.0 worker's sweep re-enqueues every run under 0.1.0's queue names."""
    world = MemoryWorld()

    async def scenario() -> Any:
        run = await start(two.flows.rollout, 7, world=world, deployment=two.v1)
        assert world.queue.delete_messages(run.run_id) == 1
        legacy = workflow_message(two.workflow("rollout"), run.run_id, deployment_id="")
        world.queue.enqueue(legacy.queue, legacy.payload)
        await _work(world, run.run_id)
        return await run.result(timeout=5)

    result = asyncio.run(scenario())
    assert (result["version"], result["box"].label) == ("v1", "7!@v1")


def test_a_worker_takes_on_the_kept_deployments_with_runs_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    package, root = unique_package(), tmp_path / "app"
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(root.parent)
    write_version(root, package, "v1")
    v1 = keep_deployment(build(root), root).deployment_id
    write_version(root, package, "v2")  # kept, but with no run: not loaded
    idle = keep_deployment(build(root), root).deployment_id
    models = root / package / "models.py"
    models.write_text(models.read_text().replace('VERSION = "v2"', 'VERSION = "v3"'))
    broken = keep_deployment(build(root, tmp_path / "v3-copy"), root, sources=root)
    (broken.path / "step" / package / "flows.py").unlink()
    models.write_text(models.read_text().replace('VERSION = "v3"', 'VERSION = "v4"'))
    v4_dir = build(root)
    world = MemoryWorld()
    monkeypatch.chdir(root)
    rollout = f"workflow//./{package}/flows//rollout"
    old = asyncio.run(start(rollout, 1, world=world, deployment=v1))
    stuck = asyncio.run(start(rollout, 2, world=world, deployment=broken.deployment_id))

    caplog.set_level("WARNING", logger="wfkit.worker")
    worker = Worker(world=world, builds=[v4_dir], kept_root=root, poll_interval=0.01)
    current = compute_deployment_id(v4_dir)
    assert worker.serving.deployment_ids() == [current, v1]
    assert idle not in worker.serving.deployment_ids()
    assert (root / ".wfkit" / "deployments" / current).is_dir()  # the worker kept its build
    assert f"kept deployment {broken.deployment_id} ({broken.path}) cannot be loaded" in (
        caplog.text
    )
    asyncio.run(asyncio.wait_for(worker.run_until_complete(old.run_id), 30))
    result = asyncio.run(old.result(timeout=5))
    assert (result["version"], result["box"].label) == ("v1", "1!@v1")
    assert world.runs.get(stuck.run_id).status == "pending"

    # A build kept after the worker started is newer than its code: its own workers serve it.
    models.write_text(models.read_text().replace('VERSION = "v4"', 'VERSION = "v5"'))
    newer = keep_deployment(build(root, tmp_path / "v5"), root, sources=root).deployment_id
    asyncio.run(start(rollout, 3, world=world, deployment=newer))
    assert worker.serving.serve_kept_in_flight(world) == []
    assert newer not in worker.serving.deployment_ids()


def test_a_worker_that_adopts_a_deployment_runs_its_runs_on_its_own_code(
    two: TwoVersions,
) -> None:
    world = MemoryWorld()

    async def scenario() -> tuple[str, Any]:
        parent = await start(two.flows.spawn, 6, world=world, deployment=two.v1)
        moved = await start(two.flows.rollout, 1, world=world, deployment=two.v1)
        await Worker(world=world, builds=[two.v2_dir], poll_interval=0.01).drain(timeout=10)
        assert world.runs.get(parent.run_id).status == "pending"  # pinned: not served
        adopting = {"builds": [two.v2_dir], "adopt": [two.v1]}
        await _work(world, parent.run_id, moved.run_id, **adopting)
        child: str = await parent.result(timeout=5)
        await _work(world, child, **adopting)
        return child, await moved.result(timeout=5)

    child, moved = asyncio.run(scenario())
    # Still v1's runs (they started there), run by v2's code: its prepare step ran.
    assert (moved["version"], moved["box"].label) == ("v2", "10!@v2")
    assert {r.deployment_id for r in world.runs.list()} == {two.v1}
    # The child stays on its parent's deployment, adopted too.
    assert asyncio.run(start_result(world, child)) == "child 6 on v2"


async def start_result(world: Any, run_id: str) -> Any:
    from wfkit.runtime.api.client import get_run

    return await get_run(run_id, world=world).result(timeout=5)


def test_adopting_all_receives_every_pinned_queue_and_a_bad_id_is_refused(
    two: TwoVersions,
) -> None:
    worker = Worker(world=MemoryWorld(), builds=[two.v2_dir], adopt=["all"])
    assert worker.serving.prefixes() == ["__wkf_d_", WORKFLOW_QUEUE_PREFIX, STEP_QUEUE_PREFIX]
    assert worker.serving.adopts(two.v1) and not worker.serving.adopts(two.v2)
    with pytest.raises(ValueError, match="adopt: 'v1' is neither a deployment ID"):
        Worker(world=MemoryWorld(), builds=[two.v2_dir], adopt=["v1"])
