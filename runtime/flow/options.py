"""The flow-control options of ``start``: checked once, then written into
``run_created`` and the messages written with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wfkit.runtime.engine.messages import workflow_message
from wfkit.runtime.flow.deadlines import deadline_instant, deadline_messages
from wfkit.runtime.flow.queues import Queue
from wfkit.worlds.base import QueueMessageRequest

__all__ = ["StartOptions", "start_options"]


@dataclass(frozen=True)
class StartOptions:
    """What ``start`` was asked beyond the workflow and its arguments."""

    idempotency_key: str | None = None
    deadline_at: datetime | None = None
    queue_name: str | None = None
    queue_key: str | None = None
    priority: int = 0

    def event_data(self) -> dict[str, Any]:
        """The fields ``run_created`` carries for these options (none by default)."""
        data: dict[str, Any] = {}
        if self.idempotency_key is not None:
            data["idempotency_key"] = self.idempotency_key
        if self.deadline_at is not None:
            data["deadline_at"] = self.deadline_at.isoformat()
        if self.queue_name is not None:
            data["queue_name"] = self.queue_name
            data["queue_priority"] = self.priority
            if self.queue_key is not None:
                data["queue_key"] = self.queue_key
        return data

    def messages(
        self, workflow_name: str, run_id: str, deployment_id: str
    ) -> list[QueueMessageRequest]:
        """The messages written with ``run_created``: the one that starts the run
        (unless it waits in a named queue: its admission enqueues it) and the one
        that wakes it at its deadline."""
        messages = []
        if self.queue_name is None:
            messages.append(workflow_message(workflow_name, run_id, deployment_id=deployment_id))
        if self.deadline_at is not None:
            messages.append(
                deadline_messages(workflow_name, run_id, deployment_id, self.deadline_at)
            )
        return messages


def start_options(
    *,
    idempotency_key: str | None,
    deadline: str | timedelta | datetime | None,
    queue: str | Queue | None,
    key: str | None,
    priority: int,
) -> StartOptions:
    """Check ``start``'s flow-control arguments.

    Raises:
        ValueError, TypeError: an argument of the wrong kind or value, in one line.
    """
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not idempotency_key
    ):
        raise ValueError(f"idempotency_key={idempotency_key!r}: expected a non-empty string")
    queue_name = queue.name if isinstance(queue, Queue) else queue
    if queue_name is not None and (not isinstance(queue_name, str) or not queue_name):
        raise ValueError(f"queue={queue!r}: expected a wfkit.Queue or a queue name")
    if key is not None and queue_name is None:
        raise ValueError("key= is a run's key in a named queue: pass queue= as well")
    if key is not None and not isinstance(key, str):
        raise TypeError(f"key={key!r}: expected a string")
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError(f"priority={priority!r}: expected an integer")
    if priority != 0 and queue_name is None:
        raise ValueError("priority= orders runs in a named queue: pass queue= as well")
    return StartOptions(
        idempotency_key=idempotency_key,
        deadline_at=deadline_instant(deadline),
        queue_name=queue_name,
        queue_key=key,
        priority=priority,
    )
