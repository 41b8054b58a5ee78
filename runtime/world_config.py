"""Which world the runtime uses when a caller names none.

This is the one runtime module that calls ``wfkit.worlds.create_world``: everything
else receives a ``World`` or asks ``get_world()``. The default comes from
``WFKIT_WORLD`` (``local`` when unset), built lazily on first use.

The local world lives in ``<project root>/.wfkit/wfkit.db``, the root found as
``python -m wfbuild`` finds it (the nearest directory with a pyproject.toml; in a
plain folder, the nearest holding a ``.wfkit/``), so ``wfkit inspect runs`` from a
subdirectory opens the project's database rather than creating a second, empty one.
``.wfkit/`` is created with its own ``.gitignore``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from wfkit.runtime.loading.project import ensure_state_dir, find_root
from wfkit.worlds.base import World, WorldUnavailableError

__all__ = [
    "get_world",
    "open_world_retrying",
    "reset_world",
    "resolve_world",
    "set_world",
    "using_world",
]

RETRY_DELAYS = (0.5, 30.0)
"""First and longest pause between two tries to reach an unreachable world."""

_lock = threading.Lock()
_world: World | None = None
_spec_lock = threading.RLock()  # reentrant: a "module:attr" factory may resolve a spec
_by_spec: dict[str, World] = {}
"""Worlds built from spec strings by ``resolve_world``, one per spec for the life of
the process: a world owns a connection pool (and, for Postgres, a LISTEN thread), so
building one per call would open — and leak — a pool per call."""


def get_world(spec: World | str | None = None) -> World:
    """The process-wide world, created from ``WFKIT_WORLD`` on first use.

    Args:
        spec: when given, the world it names instead (a World is returned as is,
            a spec string the world ``resolve_world`` keeps for it); the process-wide
            choice is unchanged.

    Returns:
        The world set by ``set_world``, else one built by ``wfkit.worlds.create_world()``.

    Raises:
        ValueError: ``WFKIT_WORLD`` names no known world.
    """
    global _world
    if spec is not None:
        return resolve_world(spec)
    with _lock:
        if _world is None:
            _world = _create(None)
        return _world


def open_world_retrying(
    spec: str | None,
    *,
    log: logging.Logger,
    prefix: str = "",
    delays: tuple[float, float] = RETRY_DELAYS,
    attempts: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> World:
    """``get_world(spec)``, tried again with exponential backoff while its database
    cannot be reached (a worker started before Postgres): one warning line per failed
    try, no traceback.

    Args:
        spec: the world spec (None: ``WFKIT_WORLD``, as ``get_world()``).
        log: where each failed try is reported (one line each).
        prefix: put before each line (``"wfkit worker: "``).
        delays: the first and the longest pause, in seconds (each pause doubles).
        attempts: give up after this many tries (None: try until it works).
        sleep: how to pause (tests pass a recorder).

    Raises:
        WorldUnavailableError: still unreachable after ``attempts`` tries.
        WorldError, ValueError: the world cannot be opened for another reason (a
            refused login, a bad spec): not worth trying again.
    """
    pause, longest = delays
    attempt = 1
    while True:
        try:
            return get_world(spec)
        except WorldUnavailableError as error:
            if attempts is not None and attempt >= attempts:
                raise
            log.warning("%s%s; trying again in %.1f s (attempt %d)", prefix, error, pause, attempt)
        sleep(pause)
        pause = min(pause * 2, longest)
        attempt += 1


def set_world(world_or_spec: World | str | None) -> World | None:
    """Choose the process-wide world.

    Args:
        world_or_spec: a World, a spec string (``"memory"``, ``"local"``, a
            ``postgresql://`` URL, ``"module:attr"``), or None to forget the
            current choice (the next ``get_world()`` reads ``WFKIT_WORLD`` again).

    Returns:
        The world now in use (None after a reset).
    """
    global _world
    if isinstance(world_or_spec, str):
        world: World | None = _create(world_or_spec)
    else:
        world = world_or_spec
    with _lock:
        _world = world
    return world


@contextmanager
def using_world(world: World) -> Iterator[World]:
    """Make ``world`` the process-wide world inside the block; restore the previous
    choice after (the testing kit binds ``start()`` and friends to a test's world)."""
    global _world
    with _lock:
        previous, _world = _world, world
    try:
        yield world
    finally:
        with _lock:
            _world = previous


def reset_world() -> None:
    """Forget the process-wide world without closing it (tests)."""
    set_world(None)


def resolve_world(world: World | str | None) -> World:
    """The world a call should use: ``world`` itself, the one built for a spec, the world
    of the step running this code, or the default.

    A spec string is built into a world once per process and that world is returned
    for every later call with the same spec (``start(fn, world="postgresql://…")`` in
    a loop shares one connection pool instead of leaking one per call).
    """
    if world is None:
        from wfkit.runtime.context import current_step

        step = current_step.get()
        if step is not None and step.world is not None:
            return step.world
        return get_world()
    if isinstance(world, str):
        with _spec_lock:
            built = _by_spec.get(world)
            if built is None:
                built = _create(world)
                _by_spec[world] = built
            return built
    return world


def _create(spec: str | None) -> World:
    """``create_world(spec)``; the local world opens under the project root's ``.wfkit/``.

    Raises:
        ValueError: the spec names no known world.
    """
    from wfkit.worlds import create_world

    effective = spec or os.environ.get("WFKIT_WORLD") or "local"
    if effective != "local":
        return create_world(effective)
    root = find_root()
    ensure_state_dir(root)
    return create_world(effective, root=str(root))
