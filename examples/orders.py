"""The demo's order workflow: a few steps, a retry, a durable sleep and an approval hook."""

from wfkit import RetryableError, create_hook, get_step_metadata, sleep


async def reserve_stock(order_id: str, items: list[str]) -> dict:
    "use step"
    return {"order_id": order_id, "reserved": sorted(items)}


async def charge_card(order_id: str, cents: int) -> str:
    "use step"
    attempt = get_step_metadata().attempt
    if attempt == 1:
        # The payment provider times out once; wfkit retries the step after a short delay.
        raise RetryableError("payment provider timed out", retry_after=0.5)
    return f"receipt-{order_id}-{cents}-attempt{attempt}"


async def ship(order_id: str, approved_by: str) -> str:
    "use step"
    return f"shipment-{order_id}-approved-by-{approved_by}"


async def process_order(order_id: str, items: list[str], cents: int) -> dict:
    "use workflow"
    reservation = await reserve_stock(order_id, items)
    receipt = await charge_card(order_id, cents)
    await sleep("2s")  # durable: a worker restarted here still wakes the run
    approval = await create_hook(token=f"approve:{order_id}", metadata={"order_id": order_id})
    shipment = await ship(order_id, approval["by"]) if approval["ok"] else None
    return {"reservation": reservation, "receipt": receipt, "shipment": shipment}
