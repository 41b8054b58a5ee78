"""``start_many``: start a batch of runs of one workflow in a few transactions.

A nightly fan-out or 10,000 e-mails need not cost 10,000 commits: ``start_many``
prepares every run first (arguments checked and serialized, ``run_created`` built),
so a bad item refuses the whole call before anything is written, then writes them
with ``Events.create_batches`` in chunks of ``starts.CHUNK`` runs. Each run is
written as ``start`` writes it (``run_created`` and its first message together), and
is answered as ``start`` answers: a run whose idempotency key is taken returns the
run that holds it, also when the key is repeated inside the call.

The items of ``calls`` are argument tuples (``(to, subject)``); ``Args(to, subject,
cc=[...])`` also passes keyword arguments. Rejected: a plain value as a one-argument
call (``start_many(wf, ids)``): a tuple value would then be ambiguous.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar, overload

from wfkit.runtime.api.client import workflow_target
from wfkit.runtime.api.run_handle import Run
from wfkit.runtime.api.starts import PreparedStart, write_starts
from wfkit.runtime.context import current_workflow
from wfkit.runtime.errors import NotInWorkflowError, SerializationError
from wfkit.runtime.flow.options import StartOptions, start_options
from wfkit.runtime.flow.queues import Queue
from wfkit.runtime.loading.pinning import pin_deployment
from wfkit.runtime.observability import tracing
from wfkit.runtime.serialization import serialize_call
from wfkit.runtime.serialization.at_rest import seal
from wfkit.runtime.world_config import resolve_world
from wfkit.worlds.base import World, WorldError, new_id

__all__ = ["Args", "start_many", "start_many_sync"]

R = TypeVar("R")
WorldArg = World | str | None


class Args:
    """One call's arguments for ``start_many``, keywords included:
    ``Args("ann@example.com", subject="hi")``."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        shown = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"Args({', '.join(shown)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Args) and (self.args, self.kwargs) == (other.args, other.kwargs)

    __hash__ = None  # type: ignore[assignment]  # holds mutable kwargs


@overload
def start_many_sync(
    workflow: str,
    calls: Iterable[tuple[Any, ...] | Args],
    *,
    world: WorldArg = None,
    deployment: str | None = None,
    idempotency_keys: Sequence[str | None] | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    keys: Sequence[str | None] | None = None,
    priority: int = 0,
) -> list[Run[Any]]: ...
@overload
def start_many_sync(
    workflow: Callable[..., Awaitable[R]],
    calls: Iterable[tuple[Any, ...] | Args],
    *,
    world: WorldArg = None,
    deployment: str | None = None,
    idempotency_keys: Sequence[str | None] | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    keys: Sequence[str | None] | None = None,
    priority: int = 0,
) -> list[Run[R]]: ...
def start_many_sync(
    workflow: Callable[..., Any] | str,
    calls: Iterable[tuple[Any, ...] | Args],
    *,
    world: WorldArg = None,
    deployment: str | None = None,
    idempotency_keys: Sequence[str | None] | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    keys: Sequence[str | None] | None = None,
    priority: int = 0,
) -> list[Run[Any]]:
    """``start_many`` for sync code."""
    if current_workflow.get() is not None:
        raise NotInWorkflowError(
            "start_many() cannot start child runs inside a workflow: start them with "
            "`await start(child, ...)`, or call start_many from a step"
        )
    items = [_split(index, item) for index, item in enumerate(calls)]
    idempotency = _per_item("idempotency_keys", idempotency_keys, len(items))
    queue_keys = _per_item("keys", keys, len(items))
    shared = start_options(
        idempotency_key=None, deadline=deadline, queue=queue, key=None, priority=priority
    )
    options = [
        _item_options(index, shared, queue, idempotency_key, key)
        for index, (idempotency_key, key) in enumerate(zip(idempotency, queue_keys, strict=True))
    ]
    target = resolve_world(world)
    workflow_name, listed_in = workflow_target(workflow)
    deployment_id = pin_deployment(workflow_name, deployment, listed_in=listed_in)
    prepared = [
        _prepare(index, workflow_name, deployment_id, option, args, kwargs)
        for index, ((args, kwargs), option) in enumerate(zip(items, options, strict=True))
    ]
    runs: list[Run[Any]] = []
    for outcome in write_starts(target, prepared):
        if isinstance(outcome, WorldError):
            raise outcome
        runs.append(Run(outcome, target))
    return runs


def _split(index: int, item: object) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """An item of ``calls`` as positional and keyword arguments.

    Raises:
        TypeError: the item is neither a tuple nor an ``Args``.
    """
    if isinstance(item, Args):
        return item.args, item.kwargs
    if isinstance(item, tuple):
        return item, {}
    raise TypeError(
        f"start_many(): calls[{index}] is {item!r}: each item is a tuple of the workflow's "
        "arguments, e.g. (x,) or (x, y), or wfkit.Args(x, name=y)"
    )


def _per_item(name: str, values: Sequence[str | None] | None, count: int) -> list[str | None]:
    """A per-run option: one value per call (all None when not given).

    Raises:
        ValueError: there are not as many values as calls.
    """
    if values is None:
        return [None] * count
    given = list(values)
    if len(given) != count:
        raise ValueError(f"start_many(): {len(given)} {name} for {count} calls: give one per call")
    return given


def _item_options(
    index: int,
    shared: StartOptions,
    queue: str | Queue | None,
    idempotency_key: str | None,
    key: str | None,
) -> StartOptions:
    """``shared`` with one call's idempotency key and queue key (one deadline instant
    for the whole batch).

    Raises:
        ValueError, TypeError: as ``start``, naming the item (``calls[7]``).
    """
    if idempotency_key is None and key is None:
        return shared
    try:
        start_options(
            idempotency_key=idempotency_key, deadline=None, queue=queue, key=key, priority=0
        )
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"start_many(): calls[{index}]: {exc}") from exc
    return replace(shared, idempotency_key=idempotency_key, queue_key=key)


def _prepare(
    index: int,
    workflow_name: str,
    deployment_id: str,
    options: StartOptions,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> PreparedStart:
    """One run of the batch, ready to write (its own ``wfkit.start`` span when tracing).

    Raises:
        SerializationError: an argument cannot be serialized; the message names the
            item (``calls[1234]``), ``path`` where the value sits in it.
    """
    run_id = new_id("wrun")
    try:
        sealed_input = seal(serialize_call(args, kwargs))
    except SerializationError as exc:
        raise SerializationError(
            f"start_many(): calls[{index}]: {exc}", type_name=exc.type_name, path=exc.path
        ) from exc
    with tracing.start_span(workflow_name, run_id) as execution_context:
        return PreparedStart.build(
            run_id=run_id,
            chosen_id=False,
            workflow_name=workflow_name,
            deployment_id=deployment_id,
            options=options,
            sealed_input=sealed_input,
            execution_context=execution_context,
        )


@overload
async def start_many(
    workflow: str,
    calls: Iterable[tuple[Any, ...] | Args],
    *,
    world: WorldArg = None,
    deployment: str | None = None,
    idempotency_keys: Sequence[str | None] | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    keys: Sequence[str | None] | None = None,
    priority: int = 0,
) -> list[Run[Any]]: ...
@overload
async def start_many(
    workflow: Callable[..., Awaitable[R]],
    calls: Iterable[tuple[Any, ...] | Args],
    *,
    world: WorldArg = None,
    deployment: str | None = None,
    idempotency_keys: Sequence[str | None] | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    keys: Sequence[str | None] | None = None,
    priority: int = 0,
) -> list[Run[R]]: ...
async def start_many(
    workflow: Callable[..., Any] | str,
    calls: Iterable[tuple[Any, ...] | Args],
    *,
    world: WorldArg = None,
    deployment: str | None = None,
    idempotency_keys: Sequence[str | None] | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    keys: Sequence[str | None] | None = None,
    priority: int = 0,
) -> list[Run[Any]]:
    """Start one run of ``workflow`` per item of ``calls``, a few hundred per transaction.

    Args:
        workflow: the workflow function (source, client stub or registered) or its ID.
        calls: each item a tuple of the workflow's positional arguments, or
            ``Args(*args, **kwargs)``; one run per item, in order.
        world, deployment, deadline, queue, priority: as ``start``, for every run.
        idempotency_keys: one key (or None) per call, as ``start``'s
            ``idempotency_key``: a key a run holds returns that run in its place; a
            key repeated in ``calls`` returns the first such item's run.
        keys: one queue key (or None) per call, as ``start``'s ``key``.

    Returns:
        One ``Run[R]`` per item, in order.

    Raises:
        SerializationError: an argument cannot be serialized; the message names the
            item (``calls[1234]``) and where the value sits. Nothing is written.
        TypeError, ValueError: an item is not a tuple or ``Args``, a per-call list
            has the wrong length, or an option is invalid (as ``start``). Nothing is
            written.
        WorldError: the world refused a run. The runs are written in chunks (one
            transaction each): chunks before a failure stay written, so retry with
            idempotency keys to start each run once.
    """
    return await asyncio.to_thread(
        start_many_sync,
        workflow,
        calls,
        world=world,
        deployment=deployment,
        idempotency_keys=idempotency_keys,
        deadline=deadline,
        queue=queue,
        keys=keys,
        priority=priority,
    )
