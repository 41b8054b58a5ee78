"""Queue messages: their queue names, the payloads written, and reading them back.

Two kinds (ARCHITECTURE.md §3). A *workflow message* on
``__wkf_workflow_<workflow id>`` makes a worker replay a run; a *step message* on
``__wkf_step_<step id>`` makes a worker run one attempt of a step. Workers receive
by prefix. A step message's idempotency key is the step's correlation id, so that
re-enqueueing an outstanding step (self-healing, hand-offs) never duplicates it.
``wake_run`` enqueues a workflow message on its own (operators' tools, tests).

Payloads are stored as JSON by the world; ``read_message`` turns a received one
back into a typed ``WorkflowMessage`` or ``StepMessage`` (or says the queue is
not ours), so nothing past the worker's dispatch indexes a raw dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wfkit.worlds.base import QueueMessage, QueueMessageRequest, World

__all__ = [
    "STEP_QUEUE_PREFIX",
    "WORKFLOW_QUEUE_PREFIX",
    "MalformedMessageError",
    "StepMessage",
    "WorkflowMessage",
    "read_message",
    "step_message",
    "wake_run",
    "workflow_message",
]

WORKFLOW_QUEUE_PREFIX = "__wkf_workflow_"
STEP_QUEUE_PREFIX = "__wkf_step_"


@dataclass(frozen=True)
class WorkflowMessage:
    """A received workflow message: bring this run forward."""

    run_id: str


@dataclass(frozen=True)
class StepMessage:
    """A received step message: run one attempt of this step of this run."""

    run_id: str
    step_id: str
    """The step's correlation id (``step_…``), which is its ``Step.step_id`` in the world."""


class MalformedMessageError(ValueError):
    """A message on one of our queues lacks a field its payload must have."""


def workflow_message(
    workflow_name: str,
    run_id: str,
    *,
    delay_seconds: float = 0.0,
    idempotency_key: str | None = None,
) -> QueueMessageRequest:
    """The message that makes a worker replay ``run_id``.

    Args:
        workflow_name: the run's workflow id (names the queue).
        run_id: the run to replay.
        delay_seconds: when it becomes visible (negative counts as now).
        idempotency_key: dedupes against a pending message with the same key.

    Returns:
        The request to enqueue, or to pass to ``create_batch(messages=…)``.
    """
    return QueueMessageRequest(
        queue=WORKFLOW_QUEUE_PREFIX + workflow_name,
        payload={"run_id": run_id},
        delay_seconds=max(0.0, delay_seconds),
        idempotency_key=idempotency_key,
    )


def step_message(
    run_id: str, correlation_id: str, step_name: str, *, delay_seconds: float = 0.0
) -> QueueMessageRequest:
    """The message that makes a worker run one step; keyed by its correlation id.

    Args:
        run_id: the step's run.
        correlation_id: the step's correlation id.
        step_name: the step function's id (names the queue).
        delay_seconds: when it becomes visible (a retry's delay; negative counts as now).

    Returns:
        The request to enqueue, or to pass to ``create_batch(messages=…)``.
    """
    return QueueMessageRequest(
        queue=STEP_QUEUE_PREFIX + step_name,
        payload={"run_id": run_id, "step_id": correlation_id, "step_name": step_name},
        delay_seconds=max(0.0, delay_seconds),
        idempotency_key=correlation_id,
    )


def wake_run(world: World, run_id: str, workflow_name: str, *, delay_seconds: float = 0.0) -> str:
    """Enqueue a workflow message for ``run_id`` so a worker replays it.

    Args:
        world: where the run lives.
        run_id: the run to wake.
        workflow_name: its workflow id (names the queue).
        delay_seconds: when the message becomes visible.

    Returns:
        The queue message id.
    """
    message = workflow_message(workflow_name, run_id, delay_seconds=delay_seconds)
    return world.queue.enqueue(message.queue, message.payload, delay_seconds=delay_seconds)


def read_message(message: QueueMessage) -> WorkflowMessage | StepMessage | None:
    """What a received message asks for.

    Args:
        message: a message received from one of our queue prefixes.

    Returns:
        A ``WorkflowMessage`` or ``StepMessage``; None when the queue is not one of ours.

    Raises:
        MalformedMessageError: the payload lacks ``run_id`` (or a step message's ``step_id``).
    """
    if message.queue.startswith(WORKFLOW_QUEUE_PREFIX):
        return WorkflowMessage(run_id=_field(message.payload, "run_id", message))
    if message.queue.startswith(STEP_QUEUE_PREFIX):
        return StepMessage(
            run_id=_field(message.payload, "run_id", message),
            step_id=_field(message.payload, "step_id", message),
        )
    return None


def _field(payload: Mapping[str, object], name: str, message: QueueMessage) -> str:
    try:
        return str(payload[name])
    except KeyError:
        raise MalformedMessageError(
            f"message {message.message_id} on {message.queue} has no {name!r}: {payload!r}"
        ) from None
