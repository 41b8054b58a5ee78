"""Conveniences for scripts, demos and tests: build if stale, run in-process, wait.

These may import ``wfbuild`` lazily (DESIGN.md §1): a production worker never loads it.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, overload

from wfkit.runtime.api.client import HookInfo, get_hook_by_token, start
from wfkit.runtime.loading.loader import BUILD_ENV, find_root, load_build
from wfkit.runtime.tools.tables import timeline
from wfkit.runtime.world_config import get_world
from wfkit.worlds.base import HookNotFoundError, World

P = ParamSpec("P")
R = TypeVar("R")


def build(root: str | Path | None = None, *, quiet: bool = True) -> Path:
    """Build the project's workflows if the build output is missing or stale; load it.

    Args:
        root: where to look for the project (default: the current directory); its
            project root is the nearest directory with a pyproject.toml. Outside any
            project (an installed app), nothing is built: the build the app carries
            (an installed wheel's, or ``$WFKIT_BUILD_DIR``) is loaded.
        quiet: do not print wfbuild's summary.

    Returns:
        The build directory.

    Raises:
        wfbuild.BuildError: the sources have errors (compiler-style diagnostics).
        FileNotFoundError: outside a project, and no installed build was found.
        InvalidBuildError: the build is incomplete (a listed module is missing).
    """
    if os.environ.get(BUILD_ENV):
        return load_build().build_dir
    project = find_root(Path(root) if root else None)
    if not (project / "pyproject.toml").is_file():
        return load_build().build_dir
    import wfbuild

    out = project / ".wfkit" / "build"
    if wfbuild.is_stale(root=project, out=out):
        report = wfbuild.build(root=project, out=out)
        if not quiet:
            print(report.summary())
    return load_build(out, root=project).build_dir


def _source_dir(workflow: Any) -> Path | None:
    """The directory of a workflow function's source file, if it has one."""
    try:
        source = inspect.getsourcefile(workflow)
    except TypeError:
        return None
    return Path(source).parent if source else None


@asynccontextmanager
async def worker(world: World | str | None = None, *, concurrency: int = 8) -> AsyncIterator[Any]:
    """Run an in-process worker in the background of the current event loop.

    ``async with wfkit.worker(): ...`` works runs until the block exits, then stops it
    gracefully (in-flight work finishes or is handed back to the queue)."""
    from wfkit.runtime.engine.worker import Worker

    resolved = get_world(world)
    instance = Worker(world=resolved, concurrency=concurrency)
    stop = asyncio.Event()
    task = asyncio.create_task(instance.run(stop_event=stop))
    try:
        yield instance
    finally:
        stop.set()
        await task


@overload
def run(
    workflow: str,
    *args: Any,
    world: World | str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> Any: ...
@overload
def run(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    world: World | str | None,
    timeout: float | None = None,
    **kwargs: Any,
) -> R: ...
@overload
def run(
    workflow: Callable[..., Awaitable[R]], *args: Any, timeout: float | None, **kwargs: Any
) -> R: ...
@overload
def run(workflow: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R: ...
def run(workflow: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a workflow to its end, in-process, and return its result (like ``asyncio.run``).

    Builds first when the build output is missing or stale, starts the run, works it
    with an in-process worker until it ends. Typed as ``start`` is: the arguments are
    checked against the workflow's signature and the result is what it returns.

    Args:
        workflow: the workflow function or its ID.
        *args, **kwargs: its arguments.
        world: the world (default ``get_world()``).
        timeout: seconds to wait for the run's end (None: no limit).

    Raises:
        WorkflowRunFailedError: the run failed (``.cause`` is the workflow's exception).
        WorkflowRunCancelledError: the run was cancelled.
        RuntimeError: called from inside a running event loop (use ``await start(...)``).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "wfkit.run() cannot be called from a running event loop; "
            "use `run = await wfkit.start(...)` and `await run.result()` instead"
        )
    world: World | str | None = kwargs.pop("world", None)
    timeout: float | None = kwargs.pop("timeout", None)
    if not isinstance(workflow, str):
        build(_source_dir(workflow))  # the function's own project, from any directory

    async def main() -> Any:
        from wfkit.runtime.engine.worker import Worker

        resolved = get_world(world)
        handle = await start(workflow, *args, world=resolved, **kwargs)
        await asyncio.wait_for(Worker(world=resolved).run_until_complete(handle.run_id), timeout)
        return await handle.result(timeout=5)

    return asyncio.run(main())


async def wait_for_hook(
    token: str, *, world: World | str | None = None, timeout: float = 30
) -> HookInfo:
    """Wait until a live hook holds ``token``; return it.

    Raises:
        HookNotFoundError: no hook appeared within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            return await get_hook_by_token(token, world=world)
        except HookNotFoundError:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)


async def format_timeline(run_id: str, *, world: World | str | None = None) -> str:
    """A run's event log as a readable timeline."""
    return timeline(get_world(world), run_id)
