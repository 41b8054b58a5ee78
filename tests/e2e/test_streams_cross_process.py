"""Streams read from another process than the one writing them (local and Postgres)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from examples.e2e import surface
from tests.conftest import postgres_url
from tests.e2e.conftest import ROOT, run_async, running_worker
from wfkit import start

READER = """
import asyncio, json, sys
from wfkit.runtime.api.streams import read_stream
from wfkit.worlds import create_world

async def main():
    world = create_world(sys.argv[1])
    namespace = sys.argv[3] or None
    async for chunk in read_stream(world, sys.argv[2], namespace):
        kind = "bytes" if isinstance(chunk, bytes) else "object"
        value = chunk.decode("latin-1") if isinstance(chunk, bytes) else chunk
        print(json.dumps({"kind": kind, "value": value}), flush=True)

asyncio.run(main())
"""


def _spec(kind: str, tmp_path: Path) -> tuple[str, Any]:
    if kind == "local":
        from wfkit.worlds.local import LocalWorld

        spec = f"sqlite:///{tmp_path / 'wfkit.db'}"
        return spec, LocalWorld.from_spec(spec)
    from wfkit.worlds.postgres import PostgresWorld

    url = postgres_url()
    assert url
    spec = f"{url}?schema=xproc_{uuid.uuid4().hex[:10]}"
    return spec, PostgresWorld(spec)


@pytest.mark.parametrize(
    "kind",
    [
        "local",
        pytest.param(
            "postgres",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(
                    not postgres_url(), reason="WFKIT_TEST_POSTGRES_URL not set (CI sets it)"
                ),
            ],
        ),
    ],
)
def test_a_reader_in_another_process_follows_the_stream(
    kind: str, tmp_path: Path, build_dir: Path
) -> None:
    spec, world = _spec(kind, tmp_path)

    async def scenario() -> tuple[list[Any], list[Any]]:
        import os

        async with running_worker(world):
            run = await start(surface.streams, world=world)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            readers = [
                subprocess.Popen(
                    [sys.executable, "-c", READER, spec, run.run_id, namespace],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for namespace in ("", "test")
            ]
            await run.result(timeout=30)
            outputs = [reader.communicate(timeout=30)[0] for reader in readers]
        return [[json.loads(line) for line in out.splitlines()] for out in outputs]

    try:
        default, named = run_async(scenario())
    finally:
        if kind == "postgres":
            world.drop_schema()
        world.close()
    assert default == [
        {"kind": "bytes", "value": "hello "},
        {"kind": "bytes", "value": "world\x00"},
        {"kind": "object", "value": {"done": True}},
    ]
    assert named == [
        {"kind": "object", "value": {"n": 1}},
        {"kind": "object", "value": {"n": 2, "nested": [1, 2]}},
    ]
