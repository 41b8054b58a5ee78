"""The client API: start runs, get handles on them, cancel and retry them.

Every call takes an optional ``world`` (a World or a spec string; default
``get_world()``) and comes in two forms: ``x`` (async) and ``x_sync`` (for scripts
and sync apps). World calls are synchronous database I/O, so the async forms run
them in a worker thread (``asyncio.to_thread``, as DBOS's async twins do) and never
block the caller's event loop; ``bench/async_client.py`` measures what that costs.
``get_run`` reads nothing, so it is a plain call in both worlds.

``start`` writes ``run_created`` and the run's first workflow message in one
transaction (the run id is made here, ``wrun_<ULID>``), so a run never exists
without a message to start it (a run in a named queue gets its message when a
worker admits it). ``start(..., run_id=X)`` and ``start(..., idempotency_key=K)``
are idempotent: when X exists, or a run was started with K, that run is returned.

Typing: ``start(wf, *args, **kwargs)`` checks the arguments against ``wf``'s
signature (a ``ParamSpec``) and returns ``Run[R]`` for a workflow returning ``R``.
PEP 612 forbids keyword-only parameters next to ``**P.kwargs``, so a call that also
passes one of ``start``'s own options (``run_id``, ``world``, ``deployment``,
``idempotency_key``, ``deadline``, ``queue``) matches an overload that keeps the
result type ``R`` but does not check the workflow's own arguments.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, overload

from wfkit.runtime.api.hook_client import (
    HookInfo,
    get_hook_by_token,
    get_hook_by_token_sync,
    resume_hook,
    resume_hook_sync,
)
from wfkit.runtime.api.run_handle import Run
from wfkit.runtime.api.starts import PreparedStart, loop_starts, write_start
from wfkit.runtime.context import current_workflow
from wfkit.runtime.engine.messages import workflow_message
from wfkit.runtime.errors import (
    EntityConflictError,
    InvalidRunIdError,
    NotInWorkflowError,
)
from wfkit.runtime.flow.options import start_options
from wfkit.runtime.flow.queues import Queue
from wfkit.runtime.loading.pinning import pin_deployment
from wfkit.runtime.loading.resolve import workflow_id_for, workflow_listing
from wfkit.runtime.observability import tracing
from wfkit.runtime.serialization import register_codec, serialize_call
from wfkit.runtime.serialization.at_rest import seal
from wfkit.runtime.world_config import resolve_world
from wfkit.worlds.base import EventRequest, World, new_id

__all__ = [
    "HookInfo",
    "Run",
    "cancel_run",
    "cancel_run_sync",
    "get_hook_by_token",
    "get_hook_by_token_sync",
    "get_run",
    "resume_hook",
    "resume_hook_sync",
    "retry_run",
    "retry_run_sync",
    "start",
    "start_sync",
    "workflow_id_of",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

WorldArg = World | str | None
_START_OPTIONS = ("run_id", "world", "deployment", "idempotency_key", "deadline", "queue", "key")


def workflow_id_of(workflow: Callable[..., Any] | str) -> str:
    """The workflow ID ``start`` uses for ``workflow``.

    Accepts an ID string, a function tagged with ``workflow_id`` (a registered
    workflow, a client- or step-mode stub), or the user's own function (from the
    source tree or an installed wheel), whose ID the build's manifest lists under its
    module and qualname (``wfkit.runtime.loading.resolve``).

    Raises:
        TypeError: ``workflow`` is neither a string nor callable.
        WorkflowNotRegisteredError: no build lists the function as a workflow.
    """
    if isinstance(workflow, str):
        return workflow
    if not callable(workflow):
        raise TypeError(
            f"start() received {workflow!r}: expected a workflow function or its ID string"
        )
    return workflow_id_for(workflow)


# --- start ------------------------------------------------------------------------------


@overload
def start_sync(
    workflow: str,
    *args: Any,
    run_id: str | None = None,
    world: WorldArg = None,
    deployment: str | None = None,
    idempotency_key: str | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    **kwargs: Any,
) -> Run[Any]: ...
@overload
def start_sync(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    run_id: str | None,
    world: WorldArg = None,
    deployment: str | None = None,
    idempotency_key: str | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    **kwargs: Any,
) -> Run[R]: ...
@overload
def start_sync(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    world: WorldArg,
    deployment: str | None = None,
    idempotency_key: str | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    **kwargs: Any,
) -> Run[R]: ...
@overload
def start_sync(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    deployment: str | None,
    idempotency_key: str | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    **kwargs: Any,
) -> Run[R]: ...
@overload
def start_sync(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    idempotency_key: str,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    world: WorldArg = None,
    deployment: str | None = None,
    **kwargs: Any,
) -> Run[R]: ...
@overload
def start_sync(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    idempotency_key: str | None = None,
    deadline: str | timedelta | datetime,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    world: WorldArg = None,
    deployment: str | None = None,
    **kwargs: Any,
) -> Run[R]: ...
@overload
def start_sync(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    idempotency_key: str | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue,
    key: str | None = None,
    priority: int = 0,
    world: WorldArg = None,
    deployment: str | None = None,
    **kwargs: Any,
) -> Run[R]: ...
@overload
def start_sync(
    workflow: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs
) -> Run[R]: ...
def start_sync(workflow: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> Run[Any]:
    """``start`` for sync code."""
    if current_workflow.get() is not None:
        raise NotInWorkflowError(
            "start() inside a workflow must be awaited: `run = await start(child, ...)`"
        )
    return _start_run(workflow, args, kwargs, write=_write_now, **_start_options(kwargs))


def _start_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take ``start``'s own options out of ``kwargs`` (the rest are the workflow's)."""
    options = {name: kwargs.pop(name, None) for name in _START_OPTIONS}
    options["priority"] = kwargs.pop("priority", 0)
    return options


def _start_run(
    workflow: Callable[..., Any] | str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    write: Callable[[World, PreparedStart], T],
    run_id: str | None,
    world: WorldArg,
    deployment: str | None,
    idempotency_key: str | None,
    deadline: str | timedelta | datetime | None,
    queue: str | Queue | None,
    key: str | None,
    priority: int,
) -> T:
    """Check and prepare the run, then ``write`` it (inside the ``wfkit.start`` span)."""
    if run_id is not None:
        check_run_id(run_id)
    target = resolve_world(world)
    workflow_name, listed_in = workflow_target(workflow)
    deployment_id = pin_deployment(workflow_name, deployment, listed_in=listed_in)
    options = start_options(
        idempotency_key=idempotency_key, deadline=deadline, queue=queue, key=key, priority=priority
    )
    chosen = run_id or new_id("wrun")
    # The span's trace context is stored with the run: its spans, steps and child runs
    # continue the caller's trace in any worker (``observability.tracing``).
    with tracing.start_span(workflow_name, chosen) as execution_context:
        prepared = PreparedStart.build(
            run_id=chosen,
            chosen_id=run_id is not None,
            workflow_name=workflow_name,
            deployment_id=deployment_id,
            options=options,
            sealed_input=seal(serialize_call(args, kwargs)),
            execution_context=execution_context,
        )
        return write(target, prepared)


def _write_now(target: World, prepared: PreparedStart) -> Run[Any]:
    return Run(write_start(target, prepared), target)


def _held(target: World, prepared: PreparedStart) -> tuple[World, PreparedStart]:
    """For a start written later, with the others of its loop (``starts.LoopStarts``)."""
    return target, prepared


MAX_RUN_ID_LENGTH = 200
"""The longest run id ``start(run_id=…)`` accepts (a ``wrun_`` id is 31 characters)."""


def check_run_id(run_id: object) -> None:
    """Refuse a caller-chosen run id that URLs, the inspector and logs cannot carry.

    Raises:
        InvalidRunIdError: ``run_id`` is not a string, is empty or longer than
            ``MAX_RUN_ID_LENGTH``, is ``.`` or ``..``, or holds ``/``, ``\\``,
            whitespace, NUL or another control character.
    """
    if not isinstance(run_id, str):
        raise InvalidRunIdError(f"run_id must be a string, not {type(run_id).__name__}")
    if not run_id:
        raise InvalidRunIdError("run_id must not be empty (pass None for a new id)")
    if len(run_id) > MAX_RUN_ID_LENGTH:
        raise InvalidRunIdError(
            f"run_id is {len(run_id)} characters long; at most {MAX_RUN_ID_LENGTH} are allowed"
        )
    if run_id in (".", ".."):
        raise InvalidRunIdError(f"run_id {run_id!r} is a path step, not a name")
    for char in run_id:
        if char in "/\\" or char.isspace() or unicodedata.category(char) == "Cc":
            raise InvalidRunIdError(
                f"run_id {run_id!r} holds {char!r}: slashes, whitespace and control "
                "characters are not allowed"
            )


def workflow_target(workflow: Callable[..., Any] | str) -> tuple[str, Path | None]:
    """The workflow's ID and the build whose manifest listed it (if one did)."""
    if isinstance(workflow, str) or not callable(workflow):
        return workflow_id_of(workflow), None
    return workflow_listing(workflow)


@overload
async def start(
    workflow: str,
    *args: Any,
    run_id: str | None = None,
    world: WorldArg = None,
    deployment: str | None = None,
    idempotency_key: str | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    **kwargs: Any,
) -> Run[Any]: ...
@overload
async def start(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    run_id: str | None,
    world: WorldArg = None,
    deployment: str | None = None,
    idempotency_key: str | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    **kwargs: Any,
) -> Run[R]: ...
@overload
async def start(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    world: WorldArg,
    deployment: str | None = None,
    idempotency_key: str | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    **kwargs: Any,
) -> Run[R]: ...
@overload
async def start(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    deployment: str | None,
    idempotency_key: str | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    **kwargs: Any,
) -> Run[R]: ...
@overload
async def start(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    idempotency_key: str,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    world: WorldArg = None,
    deployment: str | None = None,
    **kwargs: Any,
) -> Run[R]: ...
@overload
async def start(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    idempotency_key: str | None = None,
    deadline: str | timedelta | datetime,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    world: WorldArg = None,
    deployment: str | None = None,
    **kwargs: Any,
) -> Run[R]: ...
@overload
async def start(
    workflow: Callable[..., Awaitable[R]],
    *args: Any,
    idempotency_key: str | None = None,
    deadline: str | timedelta | datetime | None = None,
    queue: str | Queue,
    key: str | None = None,
    priority: int = 0,
    world: WorldArg = None,
    deployment: str | None = None,
    **kwargs: Any,
) -> Run[R]: ...
@overload
async def start(
    workflow: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs
) -> Run[R]: ...
async def start(workflow: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> Run[Any]:
    """Start a durable run of ``workflow(*args, **kwargs)``.

    Args:
        workflow: the workflow function (source, client stub or registered) or its ID.
        *args, **kwargs: its arguments (serializable values).
        run_id: a caller-chosen id; starting an existing id returns that run.
        world: the world (default ``get_world()``).
        deployment: the deployment the run is pinned to, whose workers alone serve it:
            ``"latest"`` (the newest build this process knows that lists the workflow;
            the default in app code), a deployment ID (``d_…``, as ``wfkit deployments``
            lists them), or None: ``"latest"``, except that a child run started by a
            run inherits its parent's deployment. See ``wfkit.runtime.loading.pinning``.
        idempotency_key: starting again with a key a run was started with returns
            that run and starts nothing, whatever the arguments (the first start's
            arguments stand), from any process: the world holds one run per key.
        deadline: a ``timedelta`` or duration string (``"30m"``) from now, or an aware
            ``datetime``: when it passes before the run ends, the run fails (``error_code`` ``RUN_DEADLINE_EXCEEDED``,
            cause ``RunDeadlineExceededError``) and its hooks and waits are released.
        queue: a named queue (``wfkit.Queue`` or its name): the run waits, ``pending``,
            until a worker that declares the queue admits it under the queue's limits.
        key: the run's key in its queue (per-key concurrency, e.g. a customer id).
        priority: its priority in its queue: lower is admitted first (default 0).

    Returns:
        A ``Run[R]`` handle, ``R`` being what the workflow returns.

    Raises:
        SerializationError: an argument cannot be serialized (nothing is written).
        InvalidRunIdError: ``run_id`` cannot be a run's id (see ``check_run_id``).
        TypeError: ``workflow`` is not a workflow.
        ValueError: ``deployment`` is neither ``"latest"`` nor a deployment ID.
        DeploymentNotFoundError: that deployment is not known here, or lacks the workflow.
    """
    options = _start_options(kwargs)
    if current_workflow.get() is not None:
        flow = ("idempotency_key", "deadline", "queue", "key")
        if any(options[name] is not None for name in flow) or options["priority"] != 0:
            raise NotInWorkflowError(
                "start() of a child run inside a workflow takes no idempotency_key, deadline "
                "or queue (nor key or priority; a child is started once by the parent's log "
                "already); start it from a step to use them"
            )
        # In a workflow, starting a child is itself a durable step: replays get the
        # recorded run id instead of starting a second child.
        from wfkit.runtime.api.builtin_steps import start_child

        child_id = await start_child(workflow_id_of(workflow), list(args), dict(kwargs))
        return Run(child_id)
    # Written with the other starts of this loop tick (or made while their write is in
    # flight): one worker-thread job, often one transaction (``runtime.api.starts``).
    loop = asyncio.get_running_loop()
    prepare = partial(_start_run, workflow, args, kwargs, write=_held, **options)
    target, run_id = await loop_starts(loop).start(loop, prepare)
    return Run(run_id, target)


def get_run(run_id: str, *, world: WorldArg = None) -> Run[Any]:
    """A lazy handle on the run ``run_id``: a plain call that reads nothing, so
    ``get_run(id).result()`` works (a missing run raises ``RunNotFoundError`` from the
    handle's first read, e.g. ``status()`` or ``result()``)."""
    return Run(run_id, resolve_world(world))


# --- cancel and retry -------------------------------------------------------------------


def cancel_run_sync(run_id: str, *, world: WorldArg = None, reason: str | None = None) -> bool:
    """``cancel_run`` for sync code."""
    target = resolve_world(world)
    try:
        target.events.create_batch(
            run_id, [EventRequest(event_type="run_cancelled", data={"reason": reason})]
        )
    except EntityConflictError:
        return False
    return True


async def cancel_run(run_id: str, *, world: WorldArg = None, reason: str | None = None) -> bool:
    """Append ``run_cancelled``; False when the run had already ended.

    Raises:
        RunNotFoundError: no such run.
    """
    return await asyncio.to_thread(cancel_run_sync, run_id, world=world, reason=reason)


def retry_run_sync(run_id: str, *, world: WorldArg = None) -> Run[Any]:
    """``retry_run`` for sync code."""
    target = resolve_world(world)
    record = target.runs.get(run_id)
    target.events.create_batch(
        run_id,
        [EventRequest(event_type="run_retried")],
        messages=[
            workflow_message(record.workflow_name, run_id, deployment_id=record.deployment_id)
        ],
    )
    return Run(run_id, target)


async def retry_run(run_id: str, *, world: WorldArg = None) -> Run[Any]:
    """Run a failed run again, from its log, on the code of the workers that serve its
    deployment now (its own build's, or the newest code of a worker that adopts it:
    ``wfkit worker --adopt``).

    Appends ``run_retried`` (failed -> running) and enqueues the run's workflow
    message in the same transaction; a worker replays the whole log (past the
    failure) on its current build and carries on. Waits the failure released are
    open again; hooks it disposed are not revived. A run that failed because its
    code changed (``REPLAY_DIVERGENCE``) completes once the code replays its log,
    e.g. with ``wfkit.patched()``.

    Returns:
        The run's handle.

    Raises:
        RunNotFoundError: no such run.
        EntityConflictError: the run is not failed (nothing is written).
    """
    return await asyncio.to_thread(retry_run_sync, run_id, world=world)


register_codec("run", Run, lambda run: run.run_id, lambda run_id: Run(run_id))
