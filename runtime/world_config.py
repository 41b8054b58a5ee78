"""Which world the runtime uses when a caller names none.

This is the one runtime module that calls ``wfkit.worlds.create_world``: everything
else receives a ``World`` or asks ``get_world()``. The default comes from
``WFKIT_WORLD`` (``local`` when unset), built lazily on first use.
"""

from __future__ import annotations

import threading

from wfkit.worlds.base import World

__all__ = ["get_world", "reset_world", "resolve_world", "set_world"]

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
            from wfkit.worlds import create_world

            _world = create_world(None)
        return _world


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
        from wfkit.worlds import create_world

        world: World | None = create_world(world_or_spec)
    else:
        world = world_or_spec
    with _lock:
        _world = world
    return world


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
                from wfkit.worlds import create_world

                built = create_world(world)
                _by_spec[world] = built
            return built
    return world
