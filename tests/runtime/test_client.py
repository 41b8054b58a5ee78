"""The client API: start / get_run / Run / hooks / cancel, async and sync."""

from __future__ import annotations

import asyncio
import importlib
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.e2e.wheel_project import build_project, unique_package, write_project
from tests.runtime import wf_helpers
from wfkit.runtime import gen
from wfkit.runtime.api.client import (
    HookInfo,
    Run,
    get_hook_by_token,
    get_hook_by_token_sync,
    get_run,
    resume_hook,
    resume_hook_sync,
    start,
    start_sync,
    workflow_id_of,
)
from wfkit.runtime.api.webhooks import (
    Response,
    create_webhook,
    resume_webhook,
    resume_webhook_sync,
)
from wfkit.runtime.api.workflow import define_hook
from wfkit.runtime.engine.messages import WORKFLOW_QUEUE_PREFIX
from wfkit.runtime.engine.worker import Worker
from wfkit.runtime.errors import (
    HookNotFoundError,
    RunNotFoundError,
    SerializationError,
    WorkflowNotRegisteredError,
    WorkflowRunFailedError,
)
from wfkit.runtime.loading.project import WHEEL_BUILD_PACKAGE
from wfkit.worlds.memory import MemoryWorld


class Approval(BaseModel):
    ok: bool


approval = define_hook(Approval)


@pytest.fixture(autouse=True)
def helpers() -> Iterator[Any]:
    yield importlib.reload(wf_helpers)


def _run(coro: Any, timeout: float = 30) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def source_workflow(x: int) -> int:
    "use workflow"
    return x


def test_workflow_ids() -> None:
    assert workflow_id_of("workflow//./a//b") == "workflow//./a//b"
    tagged = gen.tag_workflow("workflow//./x//y", lambda: None)
    assert workflow_id_of(tagged) == "workflow//./x//y"
    with pytest.raises(TypeError):
        workflow_id_of(42)  # type: ignore[arg-type]


def test_a_function_no_build_lists_is_refused_not_guessed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WFKIT_BUILD_DIR", raising=False)
    world = MemoryWorld()
    with pytest.raises(WorkflowNotRegisteredError, match="source_workflow is not a workflow"):
        start_sync(source_workflow, 1, world=world)
    assert world.runs.list() == []  # nothing written


def test_start_finds_the_id_of_an_installed_apps_workflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: the app's module lives in site-packages next to the wheel's
    ``__wfkit_build__``, with no pyproject.toml anywhere; its path says nothing of the
    project root, the manifest says ``workflow//./<package>/jobs//pipeline``."""
    package = unique_package()
    project = write_project(tmp_path / "project", package)
    build = build_project(project)
    site = tmp_path / "site-packages"
    shutil.copytree(project / package, site / package)
    shutil.copytree(build, site / WHEEL_BUILD_PACKAGE)
    shutil.rmtree(project)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("WFKIT_BUILD_DIR", raising=False)
    monkeypatch.delitem(sys.modules, WHEEL_BUILD_PACKAGE, raising=False)
    monkeypatch.chdir(tmp_path)
    jobs = importlib.import_module(f"{package}.jobs")
    models = importlib.import_module(f"{package}.models")

    world = MemoryWorld()
    run = start_sync(jobs.apply, models.weigh, models.Parcel("a", 3), world=world)
    (created,) = world.events.list(run.run_id)
    assert created.data["workflow_name"] == f"workflow//./{package}/jobs//apply"
    step_arg = created.data["input"]["args"][0]
    assert (step_arg["$t"], step_arg["v"]) == ("step", f"step//./{package}/models//weigh")
    parcel = created.data["input"]["args"][1]
    assert parcel["cls"] == f"{package}.models:Parcel"


def test_start_writes_run_created_and_its_message_together() -> None:
    world = MemoryWorld()
    run = start_sync(wf_helpers.sequential, 3, world=world)
    assert run.run_id.startswith("wrun_")
    (created,) = world.events.list(run.run_id)
    assert created.event_type == "run_created"
    assert created.data["workflow_name"] == wf_helpers.sequential
    assert run.run_id in world.queue.live_run_ids()
    (message,) = world.queue.receive([WORKFLOW_QUEUE_PREFIX], lease_seconds=5)
    assert message.queue == WORKFLOW_QUEUE_PREFIX + wf_helpers.sequential
    assert message.payload == {"run_id": run.run_id}
    assert run.status_sync() == "pending"


def test_unserializable_arguments_write_nothing() -> None:
    world = MemoryWorld()
    with pytest.raises(SerializationError):
        start_sync(wf_helpers.sequential, object(), world=world)
    assert world.runs.list() == []


def test_get_run_and_results() -> None:
    world = MemoryWorld()

    async def scenario() -> Any:
        missing = get_run("wrun_nope", world=world)  # lazy: reads nothing
        with pytest.raises(RunNotFoundError):
            await missing.status()
        with pytest.raises(RunNotFoundError):
            await missing.result(timeout=1)
        run = await start(wf_helpers.sequential, 4, world=world)
        with pytest.raises(TimeoutError):
            await run.result(timeout=0.05)
        await Worker(world=world, poll_interval=0.01).run_until_complete(run.run_id, timeout=10)
        again = get_run(run.run_id, world=world)
        assert isinstance(again, Run) and again.run_id == run.run_id
        assert await again.status() == "completed"
        assert await get_run(run.run_id, world=world).result() == 6  # the one-liner
        return await again.result()

    assert _run(scenario()) == 6


def test_sync_twins() -> None:
    world = MemoryWorld()
    run = start_sync(wf_helpers.uncaught_fatal, world=world)
    asyncio.run(Worker(world=world, poll_interval=0.01).run_until_complete(run.run_id, timeout=10))
    handle = get_run(run.run_id, world=world)
    with pytest.raises(WorkflowRunFailedError) as failed:
        handle.result_sync(timeout=1)
    assert "fatal!" in str(failed.value.cause)
    assert failed.value.run_id == run.run_id
    assert "fatal!" in failed.value.error["message"]
    assert failed.value.error_code == "USER_ERROR"
    with pytest.raises(WorkflowRunFailedError) as failed_async:
        _run(handle.result(timeout=1))
    assert failed_async.value.error_code == "USER_ERROR"
    with pytest.raises(HookNotFoundError):
        get_hook_by_token_sync("none", world=world)


WEBHOOKS_ID = "workflow//./tests/runtime/test_client//webhooks_then_approval"


async def _webhooks_then_approval() -> list[Any]:
    static = create_webhook(respond_with=Response(402, "pay first"))
    first = await static
    plain = create_webhook()
    second = await plain
    decision = await approval.create(token="approve-sync")
    return [first.text(), second.text(), decision.ok]


def test_the_sync_twins_resume_webhooks_and_typed_hooks() -> None:
    """resume_webhook_sync answers as the async form does; TypedHook.resume_sync delivers."""
    gen.register_workflow(WEBHOOKS_ID, _webhooks_then_approval)
    world = MemoryWorld()

    def next_hook(run_id: str, seen: set[str]) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            fresh = [h.token for h in world.hooks.list(run_id=run_id) if h.token not in seen]
            if fresh:
                seen.add(fresh[0])
                return fresh[0]
            time.sleep(0.01)
        raise AssertionError("no new hook within 20 s")

    async def scenario() -> tuple[list[Any], list[tuple[int, bytes]], HookInfo]:
        run = await start(WEBHOOKS_ID, world=world)
        worker = Worker(world=world, poll_interval=0.01)
        working = asyncio.create_task(worker.run_until_complete(run.run_id, timeout=20))
        seen: set[str] = set()
        answers = []
        for body in (b"one", b"two"):
            token = await asyncio.to_thread(next_hook, run.run_id, seen)
            answer = await asyncio.to_thread(resume_webhook_sync, token, body=body, world=world)
            answers.append((answer.status, answer.body_bytes()))
        await asyncio.to_thread(next_hook, run.run_id, seen)
        info = await asyncio.to_thread(
            approval.resume_sync, "approve-sync", Approval(ok=True), world=world
        )
        await working
        return await run.result(timeout=5), answers, info

    result, answers, info = _run(scenario())
    assert answers == [(402, b"pay first"), (202, b"")]
    assert result == ["one", "two", True]
    assert isinstance(info, HookInfo) and info.token == "approve-sync"


def test_resume_unknown_hook() -> None:
    with pytest.raises(HookNotFoundError):
        _run(resume_hook("missing", {"x": 1}, world=MemoryWorld()))


def test_no_such_hook_has_one_wording_everywhere() -> None:
    """resume_hook, get_hook_by_token and webhooks (sync and async) raise one
    HookNotFoundError with one message for a token no live hook holds."""
    world = MemoryWorld()
    expected = 'No live hook holds token "nope"'
    calls: list[Callable[[], Any]] = [
        lambda: get_hook_by_token_sync("nope", world=world),
        lambda: _run(get_hook_by_token("nope", world=world)),
        lambda: resume_hook_sync("nope", {"x": 1}, world=world),
        lambda: _run(resume_hook("nope", {"x": 1}, world=world)),
        lambda: resume_webhook_sync("nope", world=world),
        lambda: _run(resume_webhook("nope", world=world)),
        lambda: _run(approval.resume("nope", {"ok": True}, world=world)),
    ]
    for call in calls:
        with pytest.raises(HookNotFoundError) as missing:
            call()
        assert str(missing.value) == expected
