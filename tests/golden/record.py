"""Record the golden logs (and, with ``--in-flight``, a database with runs still open).

    python tests/golden/record.py OUT_DIR [--in-flight WORLD_URL]

Uses only wfkit's public API, so any released version can record: it builds
``tests/golden/app``, runs each workflow of ``goldenapp.flows`` to its end on a fresh
SQLite world and writes ``OUT_DIR/<name>.json`` (the run record and its event log as
JSON). With ``--in-flight``, it also leaves runs open on WORLD_URL: one waiting on a
hook, one finished, one never picked up by a worker, for upgrade tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

APP = Path(__file__).resolve().parent / "app"


def _dump(world: Any, run_id: str, args: list[Any]) -> dict[str, Any]:
    run = world.runs.get(run_id)
    events = world.events.list(run_id)
    import wfkit

    return {
        "recorded_with": getattr(wfkit, "__version__", None) or _dist_version(),
        "args": args,
        "run": run.model_dump(mode="json"),
        "events": [event.model_dump(mode="json") for event in events],
    }


def _dist_version() -> str:
    from importlib.metadata import version

    return version("wfkit")


async def _record(out: Path) -> None:
    from goldenapp import flows

    import wfkit

    world = wfkit.get_world(f"sqlite:///{tempfile.mkdtemp()}/golden.db")
    cases: list[tuple[str, Any, list[Any]]] = [
        ("order_flow", flows.order_flow, ["o-1"]),
        ("fan_out", flows.fan_out, [5]),
        ("errors_cross", flows.errors_cross, ["sku-9"]),
        ("fails", flows.fails, ["o-2"]),
    ]
    async with wfkit.worker(world):
        for name, fn, args in cases:
            run = await wfkit.start(fn, *args, world=world)
            if name == "order_flow":
                await wfkit.wait_for_hook("golden-approve:o-1", world=world, timeout=30)
                await wfkit.resume_hook(
                    "golden-approve:o-1", {"ok": True, "by": "ann"}, world=world
                )
            try:
                await run.result(timeout=60)
            except wfkit.WorkflowRunFailedError:
                pass
            (out / f"{name}.json").write_text(
                json.dumps(_dump(world, run.run_id, args), indent=1, sort_keys=True) + "\n"
            )
            print("recorded", name, run.run_id)


async def _leave_in_flight(url: str) -> None:
    from goldenapp import flows

    import wfkit

    world = wfkit.get_world(url)
    async with wfkit.worker(world):
        hooked = await wfkit.start(flows.order_flow, "o-inflight", world=world)
        await wfkit.wait_for_hook("golden-approve:o-inflight", world=world, timeout=30)
        finished = await wfkit.start(flows.fan_out, 3, world=world)
        await finished.result(timeout=30)
    queued = await wfkit.start(flows.errors_cross, "sku-q", world=world)
    print(
        json.dumps({"hooked": hooked.run_id, "finished": finished.run_id, "queued": queued.run_id})
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--in-flight", default=None)
    args = parser.parse_args()
    os.chdir(APP)
    sys.path.insert(0, str(APP))
    import wfkit

    wfkit.build(APP)
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(_record(args.out))
    if args.in_flight:
        asyncio.run(_leave_in_flight(args.in_flight))


if __name__ == "__main__":
    main()
