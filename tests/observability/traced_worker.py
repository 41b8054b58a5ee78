"""A worker process with OpenTelemetry set up as an application would (the SDK, an
in-memory exporter), for the restart test: it works a world until a condition
holds, stops gracefully and writes the spans it made to a JSON file.

    python -m tests.observability.traced_worker WORLD OUT RUN_ID {hook|end}

``hook``: stop once the run waits on a hook; ``end``: once every run has ended.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any


def _span_document(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "pid": os.getpid(),
    }


async def _work(world_spec: str, run_id: str, until: str) -> None:
    from tests.observability import workflows  # registers the workflows, as a build would
    from wfkit.runtime.engine.worker import Worker
    from wfkit.runtime.world_config import resolve_world

    del workflows
    world = resolve_world(world_spec)

    def done() -> bool:
        if until == "hook":
            return any(h.status == "active" for h in world.hooks.list(run_id=run_id))
        return all(r.status in ("completed", "failed", "cancelled") for r in world.runs.list())

    stop = asyncio.Event()
    worker = Worker(world=world, poll_interval=0.01, sweep_interval=0)
    working = asyncio.create_task(worker.run(stop_event=stop))
    while not done():
        await asyncio.sleep(0.02)
    stop.set()
    await working


def main() -> None:
    world_spec, out, run_id, until = sys.argv[1:5]
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    asyncio.run(asyncio.wait_for(_work(world_spec, run_id, until), 60))
    spans = [_span_document(span) for span in exporter.get_finished_spans()]
    Path(out).write_text(json.dumps(spans), encoding="utf-8")


if __name__ == "__main__":
    main()
