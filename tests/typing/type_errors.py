"""Mistakes ``mypy --strict`` must catch in code using wfkit. Each line ending in
``# error: <code>`` must be reported at that line with that code, and no other line
may be (``tests/typing/test_types.py``). Never imported or run."""

from __future__ import annotations

from pydantic import BaseModel

import wfkit
from wfkit import define_hook, get_run, start, start_sync, step_options


class Approval(BaseModel):
    ok: bool


approval = define_hook(Approval)


async def checkout(order_id: str, *, rush: bool = False) -> dict[str, int]:
    "use workflow"
    return {"rush": int(rush)}


@step_options(max_retries="5")  # error: arg-type
async def charge(order_id: str) -> str:
    "use step"
    decision = await approval.create(token="a")
    print(decision.not_a_field)  # error: attr-defined
    return order_id


charge.max_retries = 5  # error: attr-defined


async def client() -> None:
    await start(checkout, 42)  # error: call-overload
    await start(checkout)  # error: call-overload
    await start(checkout, "o-1", express=True)  # error: call-arg
    start_sync(checkout, "o-1", "o-2")  # error: call-overload
    run = await start(checkout, "o-1")
    wrong: str = await run.result()  # error: assignment
    also_wrong: list[int] = run.result_sync()  # error: assignment
    get_run("wrun_1").result_sync(timeout="soon")  # error: arg-type
    await approval.resume("a", 42)  # error: arg-type
    approval.resume_sync("a", "yes")  # error: arg-type
    del wrong, also_wrong
    runs = await wfkit.start_many(checkout, [("o-1",)])
    not_ints: list[wfkit.Run[int]] = runs  # error: assignment
    wfkit.start_many_sync(checkout, ["o-1"])  # error: list-item
    del not_ints


def script() -> None:
    wfkit.run(checkout, 1)  # error: call-overload
