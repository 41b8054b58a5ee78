"""SCENARIOS.md 7, 10, 13, 21-25, 27 and 29, end to end on every world."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from examples.e2e import surface, timers, values
from tests.e2e.conftest import events_of, run_async, run_to_end, running_worker, types_of
from wfkit import (
    HookNotFoundError,
    WorkflowRunCancelledError,
    get_hook_by_token,
    start,
    wait_for_hook,
)


async def _until(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# --- 7: durable timeouts -----------------------------------------------------------------


def test_7_wait_for_times_out_durably(world: Any) -> None:
    _run, result = run_async(run_to_end(world, timers.timeout, 30, 2))
    assert result["outcome"] == "timed out"
    assert 2 <= result["elapsed"] < 10


def test_7b_timeout_survives_a_worker_restart(world: Any) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with running_worker(world):
            run = await start(timers.timeout, 6, 2, world=world)
            await _until(lambda: "wait_created" in types_of(world, run.run_id))
        # The first worker is gone; a fresh one (empty replay cache) finishes the run.
        async with running_worker(world):
            return run, await run.result(timeout=30)

    run, result = run_async(scenario())
    assert result["outcome"] == "timed out"
    assert world.runs.get(run.run_id).status == "completed"


# --- 13: streams -------------------------------------------------------------------------


def test_13_streams_deliver_bytes_and_objects_per_namespace(world: Any) -> None:
    from wfkit.runtime.api.streams import read_stream

    async def collect(run_id: str, namespace: str | None) -> list[Any]:
        return [chunk async for chunk in read_stream(world, run_id, namespace)]

    async def scenario() -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        async with running_worker(world):
            run = await start(surface.streams, world=world)
            live_default = asyncio.create_task(collect(run.run_id, None))
            live_named = asyncio.create_task(collect(run.run_id, "test"))
            await run.result(timeout=30)
            late = await collect(run.run_id, None)  # attached after the end: from index 0
            readable = [c async for c in run.readable(namespace="test")]
            # A negative start counts from the end (the DevKit's startIndex: -n): each once.
            tails["default"] = [c async for c in run.readable(start_index=-2)]
            tails["test"] = [c async for c in run.readable(namespace="test", start_index=-1)]
            tails["past the start"] = [c async for c in run.readable(start_index=-10)]
            return await live_default, await live_named, late, readable

    tails: dict[str, list[Any]] = {}
    default, named, late, readable = run_async(scenario())
    assert tails == {
        "default": [b"world\x00", {"done": True}],
        "test": [{"n": 2, "nested": [1, 2]}],
        "past the start": default,
    }
    assert default == [b"hello ", b"world\x00", {"done": True}]
    assert isinstance(default[0], bytes)
    assert named == [{"n": 1}, {"n": 2, "nested": [1, 2]}]
    assert late == default
    assert readable == named


# --- 10: webhooks over real HTTP ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _webhook_kind(hook: Any) -> int:
    """plain (0), static (1), manual (2): the order the workflow awaits them in."""
    from wfkit.runtime.serialization import deserialize

    respond_with = deserialize(hook.respond_with) if hook.respond_with is not None else None
    return 0 if respond_with is None else 2 if respond_with == "manual" else 1


def test_10_webhooks_over_http(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx
    import uvicorn

    from wfkit.runtime.tools.http import create_app

    port = _free_port()
    monkeypatch.setenv("WFKIT_BASE_URL", f"http://127.0.0.1:{port}")

    async def scenario() -> tuple[Any, list[httpx.Response], httpx.Response, httpx.Response]:
        server = uvicorn.Server(
            uvicorn.Config(create_app(world), host="127.0.0.1", port=port, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())
        try:
            await _until(lambda: server.started)
            async with running_worker(world), httpx.AsyncClient(timeout=30) as http:
                run = await start(surface.webhooks, world=world)
                await _until(lambda: len(world.hooks.list(run_id=run.run_id)) == 3)
                hooks = sorted(world.hooks.list(run_id=run.run_id), key=_webhook_kind)
                base = f"http://127.0.0.1:{port}/.well-known/workflow/v1/webhook/"
                answers = []
                for hook, body in zip(hooks, ("one", "two", "three"), strict=True):
                    answers.append(await http.post(base + hook.token, content=body))
                result = await run.result(timeout=30)
                unknown = await http.post(base + "no-such-token")
                plain_hook = await start(surface.cancel_me, "plain-hook-10", world=world)
                await wait_for_hook("plain-hook-10", world=world)
                not_a_webhook = await http.post(base + "plain-hook-10")
                await plain_hook.cancel()
            return result, answers, unknown, not_a_webhook
        finally:
            server.should_exit = True
            await serving

    result, answers, unknown, not_a_webhook = run_async(scenario())
    assert [(a.status_code, a.content) for a in answers] == [
        (202, b""),
        (402, b"Hello from static response!"),
        (200, b"Hello from webhook!"),
    ]
    assert result["plain"]["method"] == "POST" and result["plain"]["body"] == "one"
    assert result["manual"]["body"] == "three"
    assert result["static"]["url"].endswith(answers[1].request.url.path)
    assert (unknown.status_code, unknown.text) == (404, 'No live hook holds token "no-such-token"')
    assert (not_a_webhook.status_code, not_a_webhook.text) == (
        404,
        'No live webhook holds token "plain-hook-10"',
    )


# --- 29: fetch ---------------------------------------------------------------------------


@pytest.fixture
def json_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"path": self.path, "ok": True}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/data"
    finally:
        server.shutdown()
        server.server_close()


def test_29_fetch_is_a_recorded_step(world: Any, json_server: str) -> None:
    from wfkit.runtime.api.builtin_steps import FETCH_STEP_ID

    run, result = run_async(run_to_end(world, surface.fetch_json, json_server))
    assert result == {"status": 200, "json": {"path": "/data", "ok": True}}
    (step,) = world.steps.list(run.run_id)
    assert step.step_name == FETCH_STEP_ID and step.status == "completed"


# --- 23: child runs ----------------------------------------------------------------------


def test_23_child_runs(world: Any) -> None:
    run, result = run_async(run_to_end(world, surface.child_run, 42))
    assert result["result"] == 52
    child = world.runs.get(result["child_id"])
    assert child.status == "completed" and child.workflow_name.endswith("//add_ten")
    direct = world.runs.get(result["direct_child_id"])
    assert direct.workflow_name.endswith("//add_ten")
    # Replays did not start a second direct child.
    children = [r for r in world.runs.list(limit=1000) if r.workflow_name.endswith("//add_ten")]
    assert len(children) == 2
    assert world.runs.get(run.run_id).status == "completed"


# --- 27: cancellation --------------------------------------------------------------------


def test_27_cancel_a_waiting_run_releases_its_hook(world: Any) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with running_worker(world):
            run = await start(surface.cancel_me, "cancel-27", world=world)
            await wait_for_hook("cancel-27", world=world)
            await _until(lambda: "wait_created" in types_of(world, run.run_id))
            await run.cancel()
            with pytest.raises(WorkflowRunCancelledError):
                await run.result(timeout=10)
            with pytest.raises(HookNotFoundError):
                await get_hook_by_token("cancel-27", world=world)
            await asyncio.sleep(0.3)  # give a misbehaving worker the chance to go on
            return run, await run.status()

    run, status = run_async(scenario())
    assert status == "cancelled"
    kinds = types_of(world, run.run_id)
    assert kinds[-1] == "run_cancelled"
    assert "step_created" not in kinds


# --- 21, 22, 24, 25: values, closures, classes, methods ----------------------------------


def test_21_a_step_passed_to_a_step_runs_inline(world: Any) -> None:
    run, result = run_async(run_to_end(world, values.step_passing, 5))
    assert result == 20
    assert types_of(world, run.run_id).count("step_completed") == 1


def test_22_nested_steps_read_the_workflows_variables(world: Any) -> None:
    run, result = run_async(run_to_end(world, values.closures, 10))
    assert result == {"first": "total=33", "second": "total=36"}
    created = [e for e in events_of(world, run.run_id) if e.event_type == "step_created"]
    assert created[0].data["step_name"].endswith("//closures/combine")


def test_24_custom_classes_round_trip_with_their_types(world: Any) -> None:
    _run, result = run_async(run_to_end(world, values.custom_classes))
    assert result["types"] == ["Point", "Box", "Order"]
    assert result["workflow_types"] == ["Point", "Box", "Order"]
    assert type(result["point"]).__name__ == "Point" and (result["point"].x, result["point"].y) == (
        2,
        3,
    )
    assert result["box"].label == "CRATE"
    assert result["order"].cents == 10


def test_24b_the_serializable_class_is_in_the_manifest(build_dir: Any) -> None:
    manifest = json.loads((build_dir / "manifest.json").read_text())
    assert manifest["classes"]["examples/e2e/values.py"]["Point"]["id"] == (
        "class//./examples/e2e/values//Point"
    )


def test_25_method_steps_and_a_static_method_workflow(world: Any) -> None:
    run, result = run_async(run_to_end(world, values.Calculator.calculate, 3, 4))
    assert result == {"sum": 7, "product": 12}
    names = [s.step_name for s in world.steps.list(run.run_id)]
    assert names == [
        "step//./examples/e2e/values//Calculator.add",
        "step//./examples/e2e/values//Calculator.times",
    ]
    assert world.runs.get(run.run_id).workflow_name == (
        "workflow//./examples/e2e/values//Calculator.calculate"
    )


def test_25b_instance_method_step_carries_self(world: Any) -> None:
    run, result = run_async(run_to_end(world, values.instance_method))
    assert result == {"x": 20, "y": 30, "type": "Point"}
    (step,) = world.steps.list(run.run_id)
    assert step.step_name == "step//./examples/e2e/values//Point#scaled"
