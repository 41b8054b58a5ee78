"""Hooks from the client side: look a hook up by its token, resume it.

``get_hook_by_token`` and ``resume_hook`` return a :class:`HookInfo` (the hook as a
client sees it: ids, token, metadata as the client's own classes), not the world's
stored record. Every "no such hook" the client calls raise -- an unknown token, a
hook whose run ended, a token resumed as a webhook that is not one -- is one
``HookNotFoundError`` worded by :func:`hook_not_found`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from wfkit.runtime.context import current_mode
from wfkit.runtime.engine.messages import workflow_message
from wfkit.runtime.errors import EntityConflictError, HookNotFoundError, SerializationError
from wfkit.runtime.observability import tracing
from wfkit.runtime.serialization import deserialize, serialize
from wfkit.runtime.serialization.at_rest import is_sealed, open_payload, seal
from wfkit.runtime.world_config import resolve_world
from wfkit.worlds.base import EventRequest, Hook, RunNotFoundError, World

__all__ = [
    "HookInfo",
    "get_hook_by_token",
    "get_hook_by_token_sync",
    "hook_not_found",
    "live_hook",
    "resume_hook",
    "resume_hook_sync",
]

WorldArg = World | str | None


def hook_not_found(token: str, kind: Literal["hook", "webhook"] = "hook") -> HookNotFoundError:
    """The error for a token no live hook (or webhook) holds: the one wording of it."""
    return HookNotFoundError(f'No live {kind} holds token "{token}"')


@dataclass(frozen=True)
class HookInfo:
    """A live hook as ``get_hook_by_token`` and ``resume_hook`` report it.

    Attributes:
        hook_id: the hook's id (``hook_…``).
        token: the token resumers use.
        run_id: the run that created it.
        metadata: the ``metadata`` given to ``create_hook``, as the client's classes (as
            stored, tagged JSON, when this process cannot rebuild them: e.g. a class of
            a build it has not loaded).
        is_webhook: made by ``create_webhook`` (resumed over HTTP).
        created_at: when the run created it.
    """

    hook_id: str
    token: str
    run_id: str
    metadata: Any
    is_webhook: bool
    created_at: datetime

    @classmethod
    def from_record(cls, record: Hook) -> HookInfo:
        """The client's view of a stored hook record."""
        mode = current_mode.set("client")
        try:
            stored = record.metadata
            if is_sealed(stored):
                stored = open_payload(stored)  # SerializationError without the key: kept sealed
            metadata = deserialize(stored) if stored is not None else None
        except SerializationError:
            metadata = record.metadata  # still the hook: a tool without the build can use it
        finally:
            current_mode.reset(mode)
        return cls(
            hook_id=record.hook_id,
            token=record.token,
            run_id=record.run_id,
            metadata=metadata,
            is_webhook=record.is_webhook,
            created_at=record.created_at,
        )


def live_hook(world: World, token: str) -> Hook:
    """The stored record of the active hook holding ``token``.

    Raises:
        HookNotFoundError: no live hook holds it (worded by ``hook_not_found``).
    """
    try:
        return world.hooks.get_by_token(token)
    except HookNotFoundError as exc:
        raise hook_not_found(token) from exc


def get_hook_by_token_sync(token: str, *, world: WorldArg = None) -> HookInfo:
    """``get_hook_by_token`` for sync code."""
    return HookInfo.from_record(live_hook(resolve_world(world), token))


async def get_hook_by_token(token: str, *, world: WorldArg = None) -> HookInfo:
    """The live hook holding ``token`` (read in a worker thread).

    Raises:
        HookNotFoundError: no live hook holds it.
    """
    return await asyncio.to_thread(get_hook_by_token_sync, token, world=world)


def resume_hook_sync(token: str, payload: Any, *, world: WorldArg = None) -> HookInfo:
    """``resume_hook`` for sync code."""
    target = resolve_world(world)
    hook = live_hook(target, token)
    try:
        run = target.runs.get(hook.run_id)
    except RunNotFoundError as exc:
        raise hook_not_found(token) from exc
    request = EventRequest(
        event_type="hook_received",
        correlation_id=hook.hook_id,
        data={"payload": seal(serialize(payload))},
    )
    try:
        target.events.create_batch(
            hook.run_id,
            [request],
            messages=[
                workflow_message(run.workflow_name, hook.run_id, deployment_id=run.deployment_id)
            ],
        )
    except EntityConflictError as exc:  # the run ended meanwhile
        raise hook_not_found(token) from exc
    tracing.hook_resumed(run, hook)
    return HookInfo.from_record(hook)


async def resume_hook(token: str, payload: Any, *, world: WorldArg = None) -> HookInfo:
    """Deliver ``payload`` to the hook holding ``token`` and wake its run (the world
    is written in a worker thread).

    Returns:
        The hook that took the payload.

    Raises:
        HookNotFoundError: no live hook holds the token (or its run has ended).
        SerializationError: ``payload`` cannot be serialized (nothing is written).
    """
    return await asyncio.to_thread(resume_hook_sync, token, payload, world=world)
