"""The client API: start runs, watch them, cancel them, resume their hooks.

Every call takes an optional ``world`` (a World or a spec string; default
``get_world()``). World calls are short and synchronous, so each async function
here is a thin wrapper over a sync twin (``start_sync``, ``get_run_sync``,
``Run.result_sync``, ...) that scripts and sync apps can call directly.

``start`` writes ``run_created`` and the run's first workflow message in one
transaction (the run id is made here, ``wrun_<ULID>``), so a run never exists
without a message to start it (a run in a named queue gets its message when a
worker admits it). ``start(..., run_id=X)`` and ``start(..., idempotency_key=K)``
are idempotent: when X exists, or a run was started with K, that run is returned.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Generator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from wfkit.runtime.context import current_mode, current_workflow
from wfkit.runtime.engine.messages import workflow_message
from wfkit.runtime.errors import (
    EntityConflictError,
    HookNotFoundError,
    InvalidRunIdError,
    NotInWorkflowError,
    SerializationError,
    WorkflowRunCancelledError,
    WorkflowRunFailedError,
)
from wfkit.runtime.flow.options import start_options
from wfkit.runtime.flow.queues import Queue
from wfkit.runtime.loading.pinning import pin_deployment
from wfkit.runtime.loading.resolve import workflow_id_for, workflow_listing
from wfkit.runtime.observability import tracing
from wfkit.runtime.serialization import (
    deserialize,
    deserialize_error,
    register_codec,
    serialize,
    serialize_call,
)
from wfkit.runtime.serialization.at_rest import is_sealed, open_error, open_payload, seal
from wfkit.runtime.world_config import resolve_world
from wfkit.worlds.base import (
    RUN_TERMINAL,
    EventRequest,
    Hook,
    RunNotFoundError,
    RunStatus,
    World,
    new_id,
)
from wfkit.worlds.base import Run as RunRecord

__all__ = [
    "Run",
    "cancel_run",
    "get_hook_by_token",
    "get_hook_by_token_sync",
    "get_run",
    "get_run_sync",
    "resume_hook",
    "resume_hook_sync",
    "start",
    "start_sync",
]

_POLL_FIRST = 0.01
_POLL_MAX = 0.2

WorldArg = World | str | None


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


class Run:
    """A handle on one workflow run.

    Attributes:
        run_id: the run's id (``wrun_…``).
        world: the world it lives in.
    """

    def __init__(self, run_id: str, world: World | None = None) -> None:
        self.run_id = run_id
        self._world = world

    @property
    def world(self) -> World:
        """The run's world (resolved on first use when the handle was deserialized)."""
        if self._world is None:
            self._world = resolve_world(None)
        return self._world

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.run_id == self.run_id

    def __hash__(self) -> int:
        return hash(self.run_id)

    def readable(self, namespace: str | None = None, start_index: int = 0) -> AsyncIterator[Any]:
        """The run's stream (default or ``namespace``) from ``start_index``: bytes chunks
        as bytes, other chunks as the objects written; follows a live run until the
        stream closes."""
        from wfkit.runtime.api.streams import read_stream

        return read_stream(self.world, self.run_id, namespace, start_index=start_index)

    def __repr__(self) -> str:
        return f"Run({self.run_id!r})"

    def record(self) -> RunRecord:
        """The run's current record (``wfkit.worlds.base.Run``)."""
        return self.world.runs.get(self.run_id)

    @property
    def workflow_name(self) -> str:
        """The run's workflow ID."""
        return self.record().workflow_name

    async def status(self) -> RunStatus:
        """``pending``, ``running``, ``completed``, ``failed`` or ``cancelled``."""
        return self.record().status

    def status_sync(self) -> RunStatus:
        """``status`` for sync code."""
        return self.record().status

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the run to end and return its result.

        Polls the run record (10 ms, backing off to 200 ms).

        Raises:
            WorkflowRunFailedError: the run failed; ``cause`` is the rebuilt exception.
            WorkflowRunCancelledError: the run was cancelled.
            TimeoutError: ``timeout`` seconds passed first.
        """
        polls = self._poll_outcome(timeout, clip_to_deadline=True)
        try:
            while True:
                await asyncio.sleep(next(polls))
        except StopIteration as done:
            return done.value

    def result_sync(self, timeout: float | None = None) -> Any:
        """``result`` for sync code (blocks the calling thread)."""
        polls = self._poll_outcome(timeout, clip_to_deadline=False)
        try:
            while True:
                time.sleep(next(polls))
        except StopIteration as done:
            return done.value

    def _poll_outcome(
        self, timeout: float | None, *, clip_to_deadline: bool
    ) -> Generator[float, None, Any]:
        """The polling that ``result`` and ``result_sync`` share, without the sleeping.

        Yields how long to pause before the next look at the run record (10 ms,
        doubling up to 200 ms); returns the run's outcome (``StopIteration.value``).

        Args:
            timeout: seconds to poll for (None: forever).
            clip_to_deadline: never pause past the deadline (``result_sync`` sleeps
                whole back-off steps).

        Raises:
            WorkflowRunFailedError, WorkflowRunCancelledError: as ``_outcome``.
            TimeoutError: ``timeout`` seconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _POLL_FIRST
        while True:
            record = self.record()
            if record.status in RUN_TERMINAL:
                return _outcome(record, self.world)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {self.run_id} did not finish within {timeout} s")
            if clip_to_deadline and deadline is not None:
                yield min(delay, max(0.0, deadline - time.monotonic()))
            else:
                yield delay
            delay = min(_POLL_MAX, delay * 2)

    async def cancel(self, reason: str | None = None) -> None:
        """Cancel the run (``run_cancelled``); a run that already ended is left as it is."""
        cancel_run(self.run_id, world=self.world, reason=reason)

    def cancel_sync(self, reason: str | None = None) -> None:
        """``cancel`` for sync code."""
        cancel_run(self.run_id, world=self.world, reason=reason)

    async def retry(self) -> None:
        """Run the failed run again on the current code (``retry_run``).

        Raises:
            EntityConflictError: the run is not failed (nothing is written).
        """
        retry_run(self.run_id, world=self.world)

    def retry_sync(self) -> None:
        """``retry`` for sync code."""
        retry_run(self.run_id, world=self.world)


def _outcome(record: RunRecord, world: World | None = None) -> Any:
    """The result of an ended run, its values as the client's own classes.

    Raises:
        WorkflowRunCancelledError: the run was cancelled.
        WorkflowRunFailedError: the run failed; ``cause`` is its rebuilt exception.
    """
    if record.status == "cancelled":
        raise WorkflowRunCancelledError(record.run_id)
    token = current_mode.set("client")
    try:
        if record.status == "completed":
            return deserialize(record.output)
        error = dict(record.error or {})
        cause: BaseException | None
        try:
            error = open_error(error)  # its message and stack, when encrypted
            cause = deserialize_error(error) if error else None
        except Exception as exc:  # an unreadable error must still surface as a failure
            cause = exc
    finally:
        current_mode.reset(token)
    failure = WorkflowRunFailedError(record.run_id, cause, error)
    if world is not None:
        failure.error_code = _error_code(world, record.run_id)
    raise failure


def _error_code(world: World, run_id: str) -> str | None:
    """The ``error_code`` of the run's latest ``run_failed`` event (read only on failure)."""
    for event in reversed(world.events.list(run_id)):
        if event.event_type == "run_failed":
            code = event.data.get("error_code")
            return code if isinstance(code, str) else None
    return None


# --- start ------------------------------------------------------------------------------


def start_sync(
    workflow: Callable[..., Any] | str,
    *args: Any,
    run_id: str | None = None,
    world: WorldArg = None,
    deployment: str | None = None,
    idempotency_key: str | None = None,
    deadline: timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    **kwargs: Any,
) -> Run:
    """``start`` for sync code."""
    if current_workflow.get() is not None:
        raise NotInWorkflowError(
            "start() inside a workflow must be awaited: `run = await start(child, ...)`"
        )
    if run_id is not None:
        check_run_id(run_id)
    target = resolve_world(world)
    workflow_name, listed_in = _workflow_target(workflow)
    deployment_id = pin_deployment(workflow_name, deployment, listed_in=listed_in)
    options = start_options(
        idempotency_key=idempotency_key, deadline=deadline, queue=queue, key=key, priority=priority
    )
    chosen = run_id or new_id("wrun")
    # The span's trace context is stored with the run: its spans, steps and child runs
    # continue the caller's trace in any worker (``observability.tracing``).
    with tracing.start_span(workflow_name, chosen) as execution_context:
        data = {
            "workflow_name": workflow_name,
            "input": seal(serialize_call(tuple(args), dict(kwargs))),
            "deployment_id": deployment_id,
            "execution_context": execution_context,
            **options.event_data(),
        }
        try:
            target.events.create_batch(
                chosen,
                [EventRequest(event_type="run_created", data=data)],
                messages=options.messages(workflow_name, chosen, deployment_id),
            )
        except EntityConflictError:
            if idempotency_key is not None:
                try:  # the run started with this key, by this process or another
                    return Run(target.runs.get_by_idempotency_key(idempotency_key).run_id, target)
                except RunNotFoundError:
                    pass  # the conflict was something else
            if run_id is None:
                raise
            target.runs.get(run_id)  # the existing run (RunNotFoundError if the conflict was other)
    return Run(chosen, target)


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


def _workflow_target(workflow: Callable[..., Any] | str) -> tuple[str, Path | None]:
    """The workflow's ID and the build whose manifest listed it (if one did)."""
    if isinstance(workflow, str) or not callable(workflow):
        return workflow_id_of(workflow), None
    return workflow_listing(workflow)


async def start(
    workflow: Callable[..., Any] | str,
    *args: Any,
    run_id: str | None = None,
    world: WorldArg = None,
    deployment: str | None = None,
    idempotency_key: str | None = None,
    deadline: timedelta | datetime | None = None,
    queue: str | Queue | None = None,
    key: str | None = None,
    priority: int = 0,
    **kwargs: Any,
) -> Run:
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
        deadline: a ``timedelta`` from now or an aware ``datetime``: when it passes
            before the run ends, the run fails (``error_code`` ``RUN_DEADLINE_EXCEEDED``,
            cause ``RunDeadlineExceededError``) and its hooks and waits are released.
        queue: a named queue (``wfkit.Queue`` or its name): the run waits, ``pending``,
            until a worker that declares the queue admits it under the queue's limits.
        key: the run's key in its queue (per-key concurrency, e.g. a customer id).
        priority: its priority in its queue: lower is admitted first (default 0).

    Returns:
        A ``Run`` handle.

    Raises:
        SerializationError: an argument cannot be serialized (nothing is written).
        TypeError: ``workflow`` is not a workflow.
        ValueError: ``deployment`` is neither ``"latest"`` nor a deployment ID.
        DeploymentNotFoundError: that deployment is not known here, or lacks the workflow.
    """
    if current_workflow.get() is not None:
        if idempotency_key is not None or deadline is not None or queue is not None:
            raise NotInWorkflowError(
                "start() of a child run inside a workflow takes no idempotency_key, deadline "
                "or queue (a child is started once by the parent's log already); start it "
                "from a step to use them"
            )
        # In a workflow, starting a child is itself a durable step: replays get the
        # recorded run id instead of starting a second child.
        from wfkit.runtime.api.builtin_steps import start_child

        child_id = await start_child(workflow_id_of(workflow), list(args), dict(kwargs))
        return Run(child_id)
    return start_sync(
        workflow,
        *args,
        run_id=run_id,
        world=world,
        deployment=deployment,
        idempotency_key=idempotency_key,
        deadline=deadline,
        queue=queue,
        key=key,
        priority=priority,
        **kwargs,
    )


def get_run_sync(run_id: str, *, world: WorldArg = None) -> Run:
    """``get_run`` for sync code."""
    target = resolve_world(world)
    target.runs.get(run_id)
    return Run(run_id, target)


async def get_run(run_id: str, *, world: WorldArg = None) -> Run:
    """A handle on an existing run.

    Raises:
        RunNotFoundError: no such run.
    """
    return get_run_sync(run_id, world=world)


def cancel_run(run_id: str, *, world: WorldArg = None, reason: str | None = None) -> bool:
    """Append ``run_cancelled``; False when the run had already ended.

    Raises:
        RunNotFoundError: no such run.
    """
    target = resolve_world(world)
    try:
        target.events.create_batch(
            run_id, [EventRequest(event_type="run_cancelled", data={"reason": reason})]
        )
    except EntityConflictError:
        return False
    return True


def retry_run(run_id: str, *, world: WorldArg = None) -> Run:
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


# --- hooks ------------------------------------------------------------------------------


def get_hook_by_token_sync(token: str, *, world: WorldArg = None) -> Hook:
    """``get_hook_by_token`` for sync code."""
    hook = resolve_world(world).hooks.get_by_token(token)
    if is_sealed(hook.metadata):
        try:
            hook = hook.model_copy(update={"metadata": open_payload(hook.metadata)})
        except SerializationError:
            pass  # no key here: the metadata stays sealed, the hook is still resumable
    return hook


async def get_hook_by_token(token: str, *, world: WorldArg = None) -> Hook:
    """The active hook holding ``token``; its ``metadata`` is ``<ser>`` data, opened
    when it was stored encrypted and this process has the key.

    Raises:
        HookNotFoundError: no live hook holds it.
    """
    return get_hook_by_token_sync(token, world=world)


def resume_hook_sync(token: str, payload: Any, *, world: WorldArg = None) -> Hook:
    """``resume_hook`` for sync code."""
    target = resolve_world(world)
    hook = target.hooks.get_by_token(token)
    try:
        run = target.runs.get(hook.run_id)
    except RunNotFoundError as exc:
        raise HookNotFoundError(f'Hook "{token}" not found') from exc
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
        raise HookNotFoundError(f'Hook "{token}" not found') from exc
    tracing.hook_resumed(run, hook)
    return hook


async def resume_hook(token: str, payload: Any, *, world: WorldArg = None) -> Hook:
    """Deliver ``payload`` to the hook holding ``token`` and wake its run.

    Returns:
        The hook record.

    Raises:
        HookNotFoundError: no live hook holds the token (or its run has ended).
        SerializationError: ``payload`` cannot be serialized.
    """
    return resume_hook_sync(token, payload, world=world)


register_codec("run", Run, lambda run: run.run_id, lambda run_id: Run(run_id))
