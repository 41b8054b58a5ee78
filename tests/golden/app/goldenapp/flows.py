"""The workflows whose logs tests/golden keeps: every kind of event and stored value.

Recorded by ``tests/golden/record.py`` with a released wfkit; ``test_golden_logs.py``
replays those logs against today's code. Change this file only together with
re-recording, and never in a way that changes what a recorded log means.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from wfkit import FatalError, RetryableError, create_hook, get_step_metadata, sleep


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


@dataclass
class Receipt:
    order_id: str
    cents: int
    tags: tuple[str, ...]


class OutOfStock(Exception):
    def __init__(self, sku: str, left: int) -> None:
        super().__init__(sku, left)
        self.sku = sku
        self.left = left


async def charge(order_id: str, cents: int) -> Receipt:
    "use step"
    return Receipt(order_id, cents, ("paid", "card"))


async def flaky(order_id: str) -> str:
    "use step"
    if get_step_metadata().attempt == 1:
        raise RetryableError("provider busy", retry_after=0.05)
    return f"ok-{order_id}"


async def odd_values(seed: int) -> dict[str, object]:
    "use step"
    return {
        "bytes": bytes([seed, 0, 255]),
        "tuple": (seed, "x"),
        "set": {seed, seed + 1},
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "money": Decimal("19.99"),
        "id": uuid.UUID(int=seed),
        "size": Size.LARGE,
    }


async def reserve(sku: str) -> int:
    "use step"
    raise OutOfStock(sku, 0)


reserve.max_retries = 0


async def refuse(reason: str) -> None:
    "use step"
    raise FatalError(f"refused: {reason}")


async def double(n: int) -> int:
    "use step"
    return n * 2


async def order_flow(order_id: str) -> dict[str, object]:
    "use workflow"
    receipt = await charge(order_id, 1999)
    status = await flaky(order_id)
    values = await odd_values(7)
    await sleep("1s")
    approval = await create_hook(token=f"golden-approve:{order_id}")
    return {"receipt": receipt, "status": status, "values": values, "approval": approval}


async def fan_out(n: int) -> list[int]:
    "use workflow"
    doubled = await asyncio.gather(*(double(i) for i in range(n)))
    try:
        await asyncio.wait_for(sleep(60), timeout=0.5)
    except TimeoutError:
        doubled.append(-1)
    return list(doubled)


async def errors_cross(sku: str) -> dict[str, object]:
    "use workflow"
    try:
        await reserve(sku)
    except OutOfStock as exc:
        left = (exc.sku, exc.left)
    try:
        await refuse("policy")
    except FatalError as exc:
        return {"left": left, "refused": str(exc)}
    return {}


async def fails(order_id: str) -> None:
    "use workflow"
    await refuse(order_id)
