"""Tiny workflows for the inspector tests, registered through wfkit.runtime.gen as generated code would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from wfkit.runtime import gen
from wfkit.runtime.errors import FatalError

PREFIX = "//./tests/web/web_helpers//"


def step(name: str, fn: Callable[..., Any]) -> Any:
    """Register ``fn`` as step ``name`` and return its workflow-mode proxy."""
    step_id = f"step{PREFIX}{name}"
    gen.register_step(step_id, fn)
    return gen.step_proxy(step_id, name)


def workflow(name: str, fn: Callable[..., Any]) -> str:
    """Register ``fn`` as workflow ``name``; returns its id."""
    workflow_id = f"workflow{PREFIX}{name}"
    gen.register_workflow(workflow_id, fn)
    return workflow_id


async def _fetch_order(order_id: str) -> dict[str, Any]:
    return {"order": order_id, "amount": 42}


async def _charge_card(order: dict[str, Any]) -> str:
    return f"charged {order['amount']}"


async def _send_receipt(note: str) -> str:
    return note.upper()


async def _decline(reason: str) -> None:
    raise FatalError(f"card declined: {reason}")


async def _write_chunks(stream: Any) -> int:
    await stream.write(b"raw\x00bytes")
    await stream.write({"n": 1, "tag": "<b>bold</b>"})
    await stream.close()
    return 2


fetch_order = step("fetch_order", _fetch_order)
charge_card = step("charge_card", _charge_card)
send_receipt = step("send_receipt", _send_receipt)
decline = step("decline", _decline)
write_chunks = step("write_chunks", _write_chunks)


async def _checkout(order_id: str) -> str:
    order = await fetch_order(order_id)
    charged = await charge_card(order)
    return str(await send_receipt(charged))


async def _declined(reason: str) -> None:
    await fetch_order("o-1")
    await decline(reason)


async def _napping(seconds: float) -> str:
    from wfkit.runtime.api.workflow import sleep

    await sleep(seconds)
    return "woke"


async def _log_line(stream: Any, line: str) -> None:
    await stream.write(line)


log_line = step("log_line", _log_line)


async def _streaming() -> int:
    from wfkit.runtime.api.streams import get_writable

    await log_line(get_writable("logs"), "left open")
    return int(await write_chunks(get_writable()))


checkout = workflow("checkout", _checkout)
declined = workflow("declined", _declined)
napping = workflow("napping", _napping)
streaming = workflow("streaming", _streaming)


_flaky_attempts: dict[str, int] = {}


async def _flaky_reserve(item: str) -> str:
    """Fails its first attempt (a retry after 0.2 s), then succeeds."""
    from wfkit.runtime.errors import RetryableError

    seen = _flaky_attempts.get(item, 0) + 1
    _flaky_attempts[item] = seen
    if seen == 1:
        raise RetryableError(f"warehouse busy for {item}", retry_after=0.2)
    return f"reserved {item}"


async def _pack(item: str) -> str:
    return f"packed {item}"


async def _ship(item: str, seconds: float) -> str:
    import asyncio

    await asyncio.sleep(seconds)  # long enough for a browser to watch it run
    return f"shipped {item}"


flaky_reserve = step("flaky_reserve", _flaky_reserve)
pack = step("pack", _pack)
ship = step("ship", _ship)


async def _packing(item: str) -> str:
    return str(await pack(item))


packing = workflow("packing", _packing)


async def _fulfil(item: str, nap: float, ship_seconds: float = 0.0) -> dict[str, Any]:
    """A step that fails once, a sleep, a child run, a hook, then a slow step: everything
    the timeline draws."""
    from wfkit.runtime.api.client import start
    from wfkit.runtime.api.workflow import create_hook, sleep

    reserved = await flaky_reserve(item)
    await sleep(nap)
    child = await start(packing, item)
    approval = await create_hook(token=f"approve:{item}")
    shipped = await ship(item, ship_seconds)
    return {"reserved": reserved, "child": child.run_id, "approval": approval, "shipped": shipped}


fulfil = workflow("fulfil", _fulfil)


async def _always_busy(reason: str) -> None:
    from wfkit.runtime.api.workflow import get_step_metadata
    from wfkit.runtime.errors import RetryableError

    attempt = get_step_metadata().attempt
    raise RetryableError(f"busy {attempt}: {reason}", retry_after=0.05)


_always_busy.max_retries = 1  # type: ignore[attr-defined]  # two attempts, then the step fails
always_busy = step("always_busy", _always_busy)


async def _retried_then_failed(reason: str) -> None:
    await always_busy(reason)


async def _parenting(item: str) -> str:
    from wfkit.runtime.api.client import start

    child = await start(packing, item)
    return child.run_id


retried_then_failed = workflow("retried_then_failed", _retried_then_failed)

fixed: dict[str, bool] = {}
"""Which ``fragile`` runs' "bug" is fixed (as if the code were fixed and redeployed)."""


async def _fragile(item: str) -> str:
    """Fails after its first step until ``fixed[item]`` is set; a retry then completes."""
    order = await fetch_order(item)
    if not fixed.get(item):
        raise ValueError(f"bug: cannot ship {item} yet")
    return f"shipped {order['order']}"


fragile = workflow("fragile", _fragile)
parenting = workflow("parenting", _parenting)


class Approval(BaseModel):
    """A typed hook's payload."""

    approved: bool
    note: str = ""


async def _awaiting_approval(order_id: str) -> dict[str, Any]:
    """Waits on a typed hook that carries its model's JSON Schema in its metadata."""
    from wfkit.runtime.api.workflow import define_hook

    approvals = define_hook(Approval)
    hook = approvals.create(
        token=f"approval:{order_id}", metadata={"schema": Approval.model_json_schema()}
    )
    decision = await hook
    return decision.model_dump()


async def _awaiting_anything(token: str) -> Any:
    from wfkit.runtime.api.workflow import create_hook

    return await create_hook(token=token)


awaiting_approval = workflow("awaiting_approval", _awaiting_approval)
awaiting_anything = workflow("awaiting_anything", _awaiting_anything)
