"""The README's main job: build, run the order workflow on the embedded SQLite world,
approve it through its hook, and print the result and the run's event timeline.

    python -m examples.demo
"""

from __future__ import annotations

import asyncio
import json

import wfkit
from examples.orders import process_order


async def main() -> None:
    wfkit.build()  # transform the project's "use workflow"/"use step" modules (incremental)
    async with wfkit.worker():  # an in-process worker on the default world (SQLite in .wfkit/)
        run = await wfkit.start(process_order, "o-42", ["mug", "book"], 1999)
        print(f"started {run.run_id}; waiting for it to ask for approval...")
        hook = await wfkit.wait_for_hook("approve:o-42", timeout=30)
        print(f"approval hook is live (metadata {hook.metadata}); approving it")
        await wfkit.resume_hook("approve:o-42", {"ok": True, "by": "demo"})
        result = await run.result(timeout=60)
    print("\nresult:")
    print(json.dumps(result, indent=2))
    print("\nevent timeline:")
    print(await wfkit.format_timeline(run.run_id))


if __name__ == "__main__":
    asyncio.run(main())
