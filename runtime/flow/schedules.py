"""Durable cron schedules: ``wfkit.schedule(workflow, cron=..., args=..., id=...)``.

A schedule is stored in the world (``world.schedules``: world-level configuration,
like a queue's declaration, not an event log of its own) and survives every
process. Every worker fires due ticks (``fire_due_schedules``, a few times a
second): each tick's run is started with the idempotency key
``schedule:<id>:<tick>``, so however many workers see a tick at once, the world
holds one run for it, and a worker that crashed between starting the run and
recording the tick (``advance``) only makes the next worker find that run again.

Missed ticks (no worker was running, or the schedule was paused): ``missed="skip"``
fires only the latest due tick, late; ``missed="catch_up"`` fires every missed
tick, oldest first, up to the ``MAX_CATCH_UP`` latest. A paused schedule records
no ticks, so on resume its policy decides what the pause missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from wfkit.runtime.context import current_mode
from wfkit.runtime.flow.cron import Cron, CronError, parse_cron
from wfkit.runtime.serialization import deserialize_call, serialize_call
from wfkit.runtime.world_config import resolve_world
from wfkit.worlds.base import MissedTicks, Schedule, World, WorldError, utc_now

__all__ = [
    "MAX_CATCH_UP",
    "CronError",
    "due_ticks",
    "fire_due_schedules",
    "next_due_tick",
    "next_fire_time",
    "schedule",
    "schedule_sync",
]

log = logging.getLogger("wfkit.flow")

MAX_CATCH_UP = 100
"""The most missed ticks ``missed="catch_up"`` fires at once (the latest ones)."""
_MAX_STEPS = 100_000
"""How many ticks ``due_ticks`` steps through before it stops looking further back."""


def schedule_sync(
    workflow: Callable[..., Any] | str,
    *,
    cron: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    id: str | None = None,
    missed: MissedTicks = "skip",
    world: World | str | None = None,
) -> Schedule:
    """``schedule`` for sync code."""
    from wfkit.runtime.api.client import workflow_id_of

    parse_cron(cron)  # a bad expression fails here, not in every worker
    if missed not in ("skip", "catch_up"):
        raise ValueError(f"missed={missed!r}: expected 'skip' or 'catch_up'")
    workflow_name = workflow_id_of(workflow)
    target = resolve_world(world)
    now = utc_now()
    return target.schedules.put(
        Schedule(
            schedule_id=id or workflow_name,
            workflow_name=workflow_name,
            cron=cron,
            input=serialize_call(tuple(args), dict(kwargs or {})),
            missed=missed,
            status="active",
            last_tick_at=now,  # a new schedule fires from now on (kept by a redefinition)
            created_at=now,
            updated_at=now,
        )
    )


async def schedule(
    workflow: Callable[..., Any] | str,
    *,
    cron: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    id: str | None = None,
    missed: MissedTicks = "skip",
    world: World | str | None = None,
) -> Schedule:
    """Create (or redefine) a durable cron schedule of ``workflow``.

    Calling it again with the same ``id`` (e.g. at every app start) replaces the
    definition and keeps the schedule's status and how far it has fired.

    Args:
        workflow: the workflow function or its ID.
        cron: 5-field cron (``"*/5 * * * *"``), or 6 fields with seconds first; UTC.
        args, kwargs: the arguments of every run (serializable values).
        id: the schedule's id (default: the workflow's ID).
        missed: what ticks missed while no worker ran (or while paused) become:
            ``"skip"`` (only the latest fires) or ``"catch_up"`` (each fires, at most
            ``MAX_CATCH_UP``).
        world: the world (default ``get_world()``).

    Returns:
        The stored schedule.

    Raises:
        CronError: the cron expression does not parse (a ``ValueError``).
        ValueError: ``missed`` is neither policy.
        SerializationError: an argument cannot be serialized.
    """
    return schedule_sync(
        workflow, cron=cron, args=args, kwargs=kwargs, id=id, missed=missed, world=world
    )


def next_fire_time(schedule: Schedule, now: datetime | None = None) -> datetime | None:
    """When the schedule fires next (None while paused or when its cron is invalid)."""
    if schedule.status != "active":
        return None
    try:
        cron = parse_cron(schedule.cron)
    except CronError:
        return None
    last = schedule.last_tick_at or schedule.created_at
    upcoming = cron.next_after(last)
    current = now or utc_now()
    return upcoming if upcoming > current else cron.next_after(current)


def next_due_tick(world: World) -> datetime | None:
    """The earliest tick an active schedule has yet to fire: already past while no
    worker has fired it yet (None: no active schedule with a valid cron).

    The testing kit's virtual clock stops at each of these, so that every tick of a
    schedule fires as skipped time passes it, not only the latest.
    """
    ticks = []
    for item in world.schedules.list():
        if item.status != "active":
            continue
        try:
            ticks.append(parse_cron(item.cron).next_after(item.last_tick_at or item.created_at))
        except CronError:
            continue  # fire_due_schedules logs it
    return min(ticks, default=None)


def due_ticks(cron: Cron, last: datetime, now: datetime, missed: MissedTicks) -> list[datetime]:
    """The ticks after ``last`` up to ``now`` that fire, oldest first: the latest
    (``skip``) or the ``MAX_CATCH_UP`` latest (``catch_up``)."""
    keep = 1 if missed == "skip" else MAX_CATCH_UP
    ticks: list[datetime] = []
    tick = last
    for _ in range(_MAX_STEPS):
        tick = cron.next_after(tick)
        if tick > now:
            break
        ticks.append(tick)
        if len(ticks) > keep:
            del ticks[0]
    return ticks


def fire_due_schedules(world: World, now: datetime | None = None) -> list[str]:
    """Start the runs of every active schedule's due ticks (one per tick, whoever
    else fires them too) and record how far each schedule fired.

    Returns:
        The ids of the runs of the ticks fired (started here or found started).
    """
    current = now or utc_now()
    fired: list[str] = []
    for item in world.schedules.list():
        if item.status != "active":
            continue
        try:
            cron = parse_cron(item.cron)
            ticks = due_ticks(cron, item.last_tick_at or item.created_at, current, item.missed)
        except CronError as exc:
            log.warning("schedule %s: %s", item.schedule_id, exc)
            continue
        for tick in ticks:
            try:
                fired.append(_start_tick(world, item, tick))
            except WorldError as exc:
                log.warning("schedule %s: tick %s not started: %s", item.schedule_id, tick, exc)
                break
        else:
            if ticks:
                world.schedules.advance(item.schedule_id, ticks[-1])
    return fired


def tick_key(schedule_id: str, tick: datetime) -> str:
    """The idempotency key of a schedule's run for one tick."""
    return f"schedule:{schedule_id}:{tick.isoformat()}"


def _start_tick(world: World, item: Schedule, tick: datetime) -> str:
    """Start (or find) the run of one tick."""
    from wfkit.runtime.api.client import start_sync

    token = current_mode.set("client")
    try:
        args, kwargs, _closure, _this = deserialize_call(item.input or {})
    finally:
        current_mode.reset(token)
    run = start_sync(
        item.workflow_name,
        *args,
        world=world,
        idempotency_key=tick_key(item.schedule_id, tick),
        **kwargs,
    )
    return run.run_id
