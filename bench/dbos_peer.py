# mypy: ignore-errors
"""The same shapes as bench/steps.py on DBOS Transact + SQLite, in a fresh process.

    python -m bench.dbos_peer --steps 1000 [--parallel] --db sqlite:///PATH | postgresql://…
    python -m bench.dbos_peer --steps 5 --runs 2000 --db …

Prints one JSON line: {"seconds": ..., "steps_per_s": ...}. Run by bench/steps.py
(and, with ``--runs``, by bench/scale.py) when ``dbos`` is importable; a separate
process because DBOS keeps one global instance and one registry per process.

``--runs M`` is bench/scale.py's shape: M runs of S sequential trivial steps, all
started at once (``DBOS.start_workflow_async``), in this one process, which is
DBOS's own executor (its equivalent of one worker; DBOS spreads work across
processes only through queues). The line then also carries the p50/p99 time
from a run's start call to its result, measured by the caller (wfkit's rows read
the same interval from the event log).
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
    parser.add_argument("--runs", type=int, default=0, help="M concurrent sequential runs")
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

        async def run_many() -> dict[str, float]:
            async def one() -> float:
                began = time.perf_counter()
                handle = await DBOS.start_workflow_async(sequential, args.steps)
                assert await handle.get_result() == sum(range(args.steps))
                return time.perf_counter() - began

            began = time.perf_counter()
            latencies = sorted(await asyncio.gather(*(one() for _ in range(args.runs))))
            seconds = time.perf_counter() - began
            return {
                "seconds": seconds,
                "steps_per_s": args.runs * args.steps / seconds,
                "complete_p50_ms": 1000 * latencies[len(latencies) // 2],
                "complete_p99_ms": 1000 * latencies[round(0.99 * (len(latencies) - 1))],
            }

        if args.runs:
            row = asyncio.run(run_many())
        else:
            seconds = asyncio.run(run())
            row = {"seconds": seconds, "steps_per_s": args.steps / seconds}
    finally:
        DBOS.destroy()
    print(json.dumps(row))


if __name__ == "__main__":
    main()
