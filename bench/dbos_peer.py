# mypy: ignore-errors
"""The same shapes as bench/steps.py on DBOS Transact + SQLite, in a fresh process.

    python -m bench.dbos_peer --steps 1000 [--parallel] --db sqlite:///PATH | postgresql://…

Prints one JSON line: {"seconds": ..., "steps_per_s": ...}. Run by bench/steps.py
when ``dbos`` is importable; a separate process because DBOS keeps one global
instance and one registry per process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--parallel", action="store_true")
    parser.add_argument("--db", required=True)
    args = parser.parse_args()

    from dbos import DBOS

    DBOS(
        config={
            "name": "wfkit-bench",
            "system_database_url": args.db,
            "log_level": "WARNING",
            "run_admin_server": False,
        }
    )

    @DBOS.step()
    async def noop(i: int) -> int:
        return i

    @DBOS.workflow()
    async def sequential(count: int) -> int:
        total = 0
        for i in range(count):
            total += await noop(i)
        return total

    @DBOS.workflow()
    async def fan_out(count: int) -> int:
        return sum(await asyncio.gather(*(noop(i) for i in range(count))))

    DBOS.launch()
    try:
        workflow = fan_out if args.parallel else sequential

        async def run() -> float:
            began = time.perf_counter()
            result = await workflow(args.steps)
            assert result == sum(range(args.steps)), result
            return time.perf_counter() - began

        seconds = asyncio.run(run())
    finally:
        DBOS.destroy()
    print(json.dumps({"seconds": seconds, "steps_per_s": args.steps / seconds}))


if __name__ == "__main__":
    main()
