"""Queue messages: their queue names, the payloads written, and reading them back.

Two kinds (ARCHITECTURE.md §3). A *workflow message* makes a worker replay a run; a
*step message* makes a worker run one attempt of a step. A step message's idempotency
key is the step's correlation id, so that re-enqueueing an outstanding step
(self-healing, hand-offs) never duplicates it. ``wake_run`` enqueues a workflow
message on its own (operators' tools, tests).

**Routing by deployment.** A message goes to a queue of its run's deployment
(``Run.deployment_id``), and a worker receives by the prefixes of the deployments it
serves (``queue_prefixes``), so a run's code is always the code it started on:

- pinned runs: ``__wkf_<deployment id>_workflow_<workflow id>`` and
  ``__wkf_<deployment id>_step_<step id>``, received by ``__wkf_<deployment id>_``;
- unpinned runs (deployment ""; every run wfkit 0.1.0 recorded):
  ``__wkf_workflow_<workflow id>`` and ``__wkf_step_<step id>``, 0.1.0's own names,
  so messages it left in a queue are served as they are, by workers that serve
  unpinned runs (with their newest deployment).

A deployment ID is ``d_`` and 24 hex digits, so no pinned name starts with an
unpinned prefix (a 0.1.0 worker never takes a pinned run) and no deployment's prefix
is another's. Alternatives rejected: one queue per kind with the deployment in the
payload (a worker would lease, then hand back, every message of a deployment it does
not serve); a column for the deployment (a schema change for what a name can say).

Payloads are stored as JSON by the world; ``read_message`` turns a received one
back into a typed ``WorkflowMessage`` or ``StepMessage`` (or says the queue is
not ours), so nothing past the worker's dispatch indexes a raw dict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from wfkit.worlds.base import QueueMessage, QueueMessageRequest, World

__all__ = [
    "PINNED_QUEUE_PREFIX",
    "STEP_QUEUE_PREFIX",
    "WORKFLOW_QUEUE_PREFIX",
    "MalformedMessageError",
    "StepMessage",
    "WorkflowMessage",
    "deployment_queue_prefix",
    "queue_deployment",
    "queue_prefixes",
    "read_message",
    "step_message",
    "wake_run",
    "workflow_message",
]

WORKFLOW_QUEUE_PREFIX = "__wkf_workflow_"
"""Workflow messages of unpinned runs (0.1.0's name for every workflow message)."""
STEP_QUEUE_PREFIX = "__wkf_step_"
"""Step messages of unpinned runs (0.1.0's name for every step message)."""

PINNED_QUEUE_PREFIX = "__wkf_d_"
"""Every pinned run's queues (what a worker that adopts every deployment receives by)."""
_PINNED = re.compile(r"__wkf_(d_[0-9a-f]{24})_(workflow|step)_")


@dataclass(frozen=True)
class WorkflowMessage:
    """A received workflow message: bring this run forward."""

    run_id: str
    deployment_id: str = ""
    """The deployment its queue belongs to ("" for unpinned runs)."""


@dataclass(frozen=True)
class StepMessage:
    """A received step message: run one attempt of this step of this run."""

    run_id: str
    step_id: str
    """The step's correlation id (``step_…``), which is its ``Step.step_id`` in the world."""
    deployment_id: str = ""
    """The deployment its queue belongs to ("" for unpinned runs)."""


class MalformedMessageError(ValueError):
    """A message on one of our queues lacks a field its payload must have."""


def deployment_queue_prefix(deployment_id: str) -> str:
    """The prefix of every queue of a deployment's runs (``__wkf_d_…_``)."""
    return f"__wkf_{deployment_id}_"


def queue_prefixes(
    deployment_ids: Iterable[str], *, serve_unpinned: bool, every_pinned_run: bool = False
) -> list[str]:
    """What a worker receives by to serve ``deployment_ids`` (and unpinned runs).

    Args:
        deployment_ids: the deployments it serves (loaded, or adopted).
        serve_unpinned: also take the runs recorded without a deployment.
        every_pinned_run: take the runs of every deployment (a worker that adopts all).
    """
    if every_pinned_run:
        prefixes = [PINNED_QUEUE_PREFIX]
    else:
        prefixes = [deployment_queue_prefix(d) for d in deployment_ids if d]
    if serve_unpinned:
        prefixes += [WORKFLOW_QUEUE_PREFIX, STEP_QUEUE_PREFIX]
    return prefixes


def queue_deployment(queue: str) -> str | None:
    """The deployment a queue name belongs to: its ID, "" for an unpinned run's queue,
    None for a queue that is not ours."""
    pinned = _PINNED.match(queue)
    if pinned is not None:
        return pinned.group(1)
    if queue.startswith((WORKFLOW_QUEUE_PREFIX, STEP_QUEUE_PREFIX)):
        return ""
    return None


def _queue(kind: str, deployment_id: str, name: str) -> str:
    if not deployment_id:
        return f"__wkf_{kind}_{name}"
    return f"{deployment_queue_prefix(deployment_id)}{kind}_{name}"


def workflow_message(
    workflow_name: str,
    run_id: str,
    *,
    deployment_id: str,
    delay_seconds: float = 0.0,
    idempotency_key: str | None = None,
) -> QueueMessageRequest:
    """The message that makes a worker replay ``run_id``.

    Args:
        workflow_name: the run's workflow id (names the queue).
        run_id: the run to replay.
        deployment_id: the run's deployment ("" when unpinned; names the queue).
        delay_seconds: when it becomes visible (negative counts as now).
        idempotency_key: dedupes against a pending message with the same key.

    Returns:
        The request to enqueue, or to pass to ``create_batch(messages=…)``.
    """
    return QueueMessageRequest(
        queue=_queue("workflow", deployment_id, workflow_name),
        payload={"run_id": run_id},
        delay_seconds=max(0.0, delay_seconds),
        idempotency_key=idempotency_key,
    )


def step_message(
    run_id: str,
    correlation_id: str,
    step_name: str,
    *,
    deployment_id: str,
    delay_seconds: float = 0.0,
) -> QueueMessageRequest:
    """The message that makes a worker run one step; keyed by its correlation id.

    Args:
        run_id: the step's run.
        correlation_id: the step's correlation id.
        step_name: the step function's id (names the queue).
        deployment_id: the run's deployment ("" when unpinned; names the queue).
        delay_seconds: when it becomes visible (a retry's delay; negative counts as now).

    Returns:
        The request to enqueue, or to pass to ``create_batch(messages=…)``.
    """
    return QueueMessageRequest(
        queue=_queue("step", deployment_id, step_name),
        payload={"run_id": run_id, "step_id": correlation_id, "step_name": step_name},
        delay_seconds=max(0.0, delay_seconds),
        idempotency_key=correlation_id,
    )


def wake_run(world: World, run_id: str, *, delay_seconds: float = 0.0) -> str:
    """Enqueue a workflow message for ``run_id`` (on its deployment's queue) so a worker
    replays it.

    Args:
        world: where the run lives.
        run_id: the run to wake.
        delay_seconds: when the message becomes visible.

    Returns:
        The queue message id.

    Raises:
        RunNotFoundError: no such run.
    """
    run = world.runs.get(run_id)
    message = workflow_message(
        run.workflow_name, run_id, deployment_id=run.deployment_id, delay_seconds=delay_seconds
    )
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
    pinned = _PINNED.match(message.queue)
    if pinned is not None:
        deployment_id, kind = pinned.group(1), pinned.group(2)
    elif message.queue.startswith(WORKFLOW_QUEUE_PREFIX):
        deployment_id, kind = "", "workflow"
    elif message.queue.startswith(STEP_QUEUE_PREFIX):
        deployment_id, kind = "", "step"
    else:
        return None
    run_id = _field(message.payload, "run_id", message)
    if kind == "workflow":
        return WorkflowMessage(run_id=run_id, deployment_id=deployment_id)
    return StepMessage(
        run_id=run_id,
        step_id=_field(message.payload, "step_id", message),
        deployment_id=deployment_id,
    )


def _field(payload: Mapping[str, object], name: str, message: QueueMessage) -> str:
    try:
        return str(payload[name])
    except KeyError:
        raise MalformedMessageError(
            f"message {message.message_id} on {message.queue} has no {name!r}: {payload!r}"
        ) from None
