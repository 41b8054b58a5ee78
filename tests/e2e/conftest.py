"""End-to-end harness: build examples/ once, then run scenarios on every world.

Each test gets a fresh world (memory, local SQLite in tmp_path, and Postgres when
WFKIT_TEST_POSTGRES_URL is set — always in CI) and an in-process worker.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import postgres_url

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/ built once per session, and loaded into this process."""
    import wfbuild
    from wfkit.runtime.loading.loader import load_build

    out = tmp_path_factory.mktemp("build")
    wfbuild.build([ROOT / "examples"], root=ROOT, out=out)
    load_build(out, root=ROOT)
    return out


@pytest.fixture(scope="session")
def wfkit_build(build_dir: Path) -> Path:
    """The testing kit's ``wf_env`` fixture uses the examples build loaded above."""
    return build_dir


def _memory(tmp_path: Path) -> Any:
    from wfkit.worlds.memory import MemoryWorld

    return MemoryWorld()


def _local(tmp_path: Path) -> Any:
    from wfkit.worlds.local import LocalWorld

    return LocalWorld.from_spec(f"sqlite:///{tmp_path / 'wfkit.db'}")


def _postgres(tmp_path: Path) -> Any:
    from wfkit.worlds.postgres import PostgresWorld

    url = postgres_url()
    assert url
    return PostgresWorld(url, schema=f"e2e_{uuid.uuid4().hex[:12]}")


WORLDS: dict[str, Callable[[Path], Any]] = {"memory": _memory, "local": _local}
_PG = pytest.mark.skipif(not postgres_url(), reason="WFKIT_TEST_POSTGRES_URL not set (CI sets it)")
WORLD_PARAMS = [
    pytest.param("memory"),
    pytest.param("local"),
    pytest.param("postgres", marks=[pytest.mark.postgres, _PG]),
]
KIT_WORLDS = [
    pytest.param("memory", marks=pytest.mark.wfkit(world="memory")),
    pytest.param("local", marks=pytest.mark.wfkit(world="local")),
    pytest.param(
        "postgres", marks=[pytest.mark.postgres, _PG, pytest.mark.wfkit(world="postgres")]
    ),
]
"""For ``wf_env`` tests: every world, idle time skipped on memory and local (Postgres
runs in real time: its queue reads the server's clock)."""


@pytest.fixture(params=WORLD_PARAMS)
def world(request: pytest.FixtureRequest, tmp_path: Path, build_dir: Path) -> Iterator[Any]:
    factory = {"postgres": _postgres, **WORLDS}[request.param]
    instance = factory(tmp_path)
    try:
        yield instance
    finally:
        drop = getattr(instance, "drop_schema", None)
        if request.param == "postgres" and callable(drop):
            drop()
        instance.close()


@asynccontextmanager
async def running_worker(world: Any, **options: Any) -> AsyncIterator[Any]:
    """An in-process worker working ``world`` in the background of this event loop."""
    from wfkit.runtime.engine.worker import Worker

    options.setdefault("concurrency", 16)
    worker = Worker(world=world, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop_event=stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def run_async(coro: Awaitable[T], timeout: float = 120) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def run_to_end(
    world: Any, fn: Any, *args: Any, timeout: float = 60, **kwargs: Any
) -> tuple[Any, Any]:
    """Start ``fn(*args)`` on ``world``, work it until it ends; (run handle, result or exception)."""
    from wfkit.runtime.api.client import start

    async with running_worker(world):
        run = await start(fn, *args, world=world, **kwargs)
        try:
            result: Any = await run.result(timeout=timeout)
        except Exception as exc:  # the test inspects it
            result = exc
    return run, result


def events_of(world: Any, run_id: str) -> list[Any]:
    return list(world.events.list(run_id))


def types_of(world: Any, run_id: str) -> list[str]:
    return [e.event_type for e in events_of(world, run_id)]


os.environ.setdefault("WFKIT_TEST_RUN", "1")
