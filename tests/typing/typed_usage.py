"""Correct uses of wfkit's typed surface: ``mypy --strict`` must report nothing here.

Checked by ``tests/typing/test_types.py`` (never imported or run: it only has to type-check).
"""

from __future__ import annotations

from typing import Any, assert_type

from pydantic import BaseModel

import wfkit
from wfkit import (
    HookInfo,
    Request,
    Run,
    StreamHandle,
    Webhook,
    create_hook,
    create_webhook,
    define_hook,
    get_run,
    get_writable,
    start,
    start_sync,
    step_options,
)


class Approval(BaseModel):
    ok: bool


approval = define_hook(Approval)
untyped = define_hook()


@step_options(max_retries=5)
async def charge(order_id: str, cents: int) -> str:
    "use step"
    return f"{order_id}:{cents}"


async def checkout(order_id: str, *, rush: bool = False) -> dict[str, int]:
    "use workflow"
    receipt = await charge(order_id, 100)
    assert_type(receipt, str)
    hook = create_hook(token="t")
    payload = await hook
    assert_type(payload, Any)
    decision = await approval.create(token="a")
    assert_type(decision, Approval)
    webhook = create_webhook(respond_with="manual")
    assert_type(webhook, Webhook)
    assert_type(webhook.url, str)
    request = await webhook
    assert_type(request, Request)
    assert_type(get_writable("logs"), StreamHandle)
    child = await start(charge_twice, 3)
    assert_type(child, Run[int])
    return {"cents": len(receipt), "rush": int(rush)}


async def charge_twice(n: int) -> int:
    "use workflow"
    return n * 2


async def client() -> None:
    run = await start(checkout, "o-1")
    assert_type(run, Run[dict[str, int]])
    assert_type(await run.result(timeout=5), dict[str, int])
    assert_type(run.result_sync(), dict[str, int])
    assert_type(await start(checkout, "o-1", rush=True), Run[dict[str, int]])
    assert_type(await start(checkout, "o-1", run_id="wrun_x"), Run[dict[str, int]])
    assert_type(start_sync(checkout, "o-2"), Run[dict[str, int]])
    assert_type(await start("workflow//./app//checkout", 1), Run[Any])
    assert_type(await get_run("wrun_1").result(), Any)
    assert_type(await wfkit.cancel_run("wrun_1"), bool)
    assert_type(wfkit.cancel_run_sync("wrun_1"), bool)
    info = await wfkit.get_hook_by_token("t")
    assert_type(info, HookInfo)
    assert_type(await wfkit.resume_hook("t", {"x": 1}), HookInfo)
    assert_type(await approval.resume("a", Approval(ok=True)), HookInfo)
    assert_type(approval.resume_sync("a", {"ok": True}), HookInfo)
    assert_type(await untyped.resume("a", 42), HookInfo)
    assert_type(await wfkit.resume_webhook("w", method="GET"), wfkit.Response)
    assert_type(wfkit.resume_webhook_sync("w"), wfkit.Response)
    async for chunk in run.readable(start_index=-1):
        assert_type(chunk, Any)


def script() -> None:
    assert_type(wfkit.run(charge_twice, 4), int)
    assert_type(wfkit.run(charge_twice, 4, timeout=30), int)
    assert_type(wfkit.run("workflow//./app//charge_twice", 4), Any)


async def batch_starts() -> None:
    runs = await wfkit.start_many(checkout, [("o-1",), wfkit.Args("o-2", rush=True)])
    assert_type(runs, list[Run[dict[str, int]]])
    synced = wfkit.start_many_sync(checkout, [("o-3",)], idempotency_keys=["k-3"])
    assert_type(synced, list[Run[dict[str, int]]])
    by_id = wfkit.start_many_sync("workflow//./app//checkout", [("o-4",)])
    assert_type(by_id, list[Run[Any]])
