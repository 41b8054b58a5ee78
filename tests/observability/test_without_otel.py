"""Without OpenTelemetry (not installed, or installed and not configured) wfkit runs as
before and never imports it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = """
import asyncio, sys
{prelude}
from tests.observability import workflows
from wfkit.runtime.api.client import get_run, resume_hook, start
from wfkit.runtime.engine.worker import Worker
from wfkit.worlds.memory import MemoryWorld

async def main():
    world = MemoryWorld()
    worker = Worker(world=world, poll_interval=0.01, sweep_interval=0)
    stop = asyncio.Event()
    working = asyncio.create_task(worker.run(stop_event=stop))
    run = await start(workflows.PARENT, "no-otel", world=world)
    while not world.hooks.list(run_id=run.run_id):
        await asyncio.sleep(0.01)
    await resume_hook("no-otel", {{"n": 1}}, world=world)
    child = await run.result(timeout=10)
    await get_run(child, world=world).result(timeout=10)
    stop.set()
    await working
    print("child", world.runs.get(child).status)
    loaded = [m for m, module in sys.modules.items() if module and m.startswith("opentelemetry")]
    print("imported", sorted(loaded))

asyncio.run(main())
"""


def _scenario(prelude: str, **env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO.format(prelude=prelude)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_without_opentelemetry_installed_runs_complete() -> None:
    # A None entry in sys.modules makes every `import opentelemetry...` an ImportError,
    # as on a machine without the `otel` extra; the environment variable makes wfkit try.
    blocked = "sys.modules['opentelemetry'] = None"
    lines = _scenario(blocked, OTEL_PYTHON_TRACER_PROVIDER="sdk_tracer_provider")
    assert lines == ["child completed", "imported []"]


def test_installed_but_not_configured_it_is_never_imported() -> None:
    assert _scenario("") == ["child completed", "imported []"]
