"""A small shop: the workflows the testing kit's example tests drive."""

import asyncio
from datetime import datetime

from wfkit import RetryableError, create_hook, get_step_metadata, get_writable, sleep


async def charge(order_id: str, cents: int) -> str:
    "use step"
    return f"receipt-{order_id}-{cents}"


async def ship(order_id: str) -> str:
    "use step"
    return f"shipment-{order_id}"


async def refund(order_id: str) -> str:
    "use step"
    return f"refund-{order_id}"


async def checkout(order_id: str, cents: int) -> dict:
    "use workflow"
    receipt = await charge(order_id, cents)
    started = datetime.now()
    await sleep("1d")  # ship the next day
    shipment = await ship(order_id)
    waited = (datetime.now() - started).total_seconds()
    return {"receipt": receipt, "shipment": shipment, "waited_seconds": waited}


async def flaky_charge(order_id: str) -> dict:
    "use step"
    meta = get_step_metadata()
    if meta.attempt == 1:
        raise RetryableError("card network down", retry_after="1h")
    return {"attempt": meta.attempt, "started_at": meta.step_started_at.isoformat()}


async def charge_with_retry(order_id: str) -> dict:
    "use workflow"
    before = datetime.now()
    outcome = await flaky_charge(order_id)
    outcome["waited_seconds"] = (datetime.now() - before).total_seconds()
    return outcome


async def approval(order_id: str) -> str:
    "use workflow"
    hook = create_hook(token=f"approve:{order_id}")
    try:
        decision = await asyncio.wait_for(hook, timeout=30 * 24 * 3600)
    except TimeoutError:
        return "expired"
    return "approved" if decision["ok"] else "rejected"


async def write_progress(order_id: str) -> None:
    "use step"
    stream = get_writable()
    for stage in ("packed", "shipped"):
        await stream.write({"order": order_id, "stage": stage})
    await stream.close()


async def tracked(order_id: str) -> str:
    "use workflow"
    await write_progress(order_id)
    return "tracked"


async def daily_report(day: str) -> str:
    "use workflow"
    return f"report-{day}"
