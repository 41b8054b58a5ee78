"""Worlds: where wfkit keeps durable state. ``create_world`` is the only place that
knows the concrete worlds; it imports each lazily."""

from __future__ import annotations

import importlib
import os

from wfkit.worlds.base import World

__all__ = ["World", "create_world"]


def create_world(spec: str | None = None, *, root: str | None = None) -> World:
    """Build a world from a spec string.

    Args:
        spec: ``"local"`` (default; SQLite under ``<root>/.wfkit/``), ``"memory"``,
            a ``postgresql://`` URL, a ``sqlite:///path`` URL, or ``"module:attr"``
            naming a World instance or a zero-argument factory. None reads
            ``WFKIT_WORLD``.
        root: project root for the local world's file (default: cwd).

    Raises:
        ValueError: the spec names no known world.
    """
    spec = spec or os.environ.get("WFKIT_WORLD") or "local"
    if spec == "memory":
        from wfkit.worlds.memory import MemoryWorld

        return MemoryWorld()
    if spec == "local" or spec.startswith("sqlite:"):
        from wfkit.worlds.local import LocalWorld

        return LocalWorld.from_spec(spec, root=root)
    if spec.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        from wfkit.worlds.postgres import PostgresWorld

        return PostgresWorld(spec)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        target = getattr(importlib.import_module(module_name), attr)
        world = target() if callable(target) and not isinstance(target, World) else target
        if not isinstance(world, World):
            raise ValueError(
                f"WFKIT_WORLD={spec!r} does not name a World (got {type(world).__name__})"
            )
        return world
    raise ValueError(
        f"unknown world {spec!r}: expected 'local', 'memory', a postgresql:// URL or 'module:attr'"
    )
