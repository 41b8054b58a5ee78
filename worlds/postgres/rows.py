"""Conversions between database rows and ``wfkit.worlds.base`` records.

JSON values are stored as TEXT written by ``json.dumps`` with ``ensure_ascii``,
so a NUL inside a user value is the six characters ``\\u0000``, which TEXT
accepts (a raw NUL is refused by both TEXT and JSONB). SQL NULL stands for None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wfkit.worlds.base import Event, Hook, QueueMessage, Run, Step, Wait

__all__ = [
    "dump_json",
    "event_from_row",
    "event_params",
    "hook_from_row",
    "hook_params",
    "load_json",
    "message_from_row",
    "run_from_row",
    "run_params",
    "step_from_row",
    "step_params",
    "wait_from_row",
    "wait_params",
]

_encode = json.JSONEncoder(ensure_ascii=True, allow_nan=True, separators=(",", ":")).encode


def dump_json(value: Any) -> str | None:
    """JSON text for a column, or None (SQL NULL) for None."""
    return None if value is None else _encode(value)


def load_json(raw: str | None) -> Any:
    """The value of a JSON TEXT column (None for SQL NULL)."""
    return None if raw is None else json.loads(raw)


def run_params(run: Run) -> dict[str, Any]:
    """Column values of a run row."""
    return {
        "run_id": run.run_id,
        "workflow_name": run.workflow_name,
        "status": run.status,
        "input": dump_json(run.input),
        "output": dump_json(run.output),
        "error": dump_json(run.error),
        "deployment_id": run.deployment_id,
        "execution_context": _encode(run.execution_context),
        "spec_version": run.spec_version,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "started_at": run.started_at,
        "completed_at": run.completed_at,
    }


def run_from_row(row: Mapping[Any, Any]) -> Run:
    """A Run from a ``runs`` row."""
    return Run(
        run_id=row["run_id"],
        workflow_name=row["workflow_name"],
        status=row["status"],
        input=load_json(row["input"]),
        output=load_json(row["output"]),
        error=load_json(row["error"]),
        deployment_id=row["deployment_id"],
        execution_context=load_json(row["execution_context"]) or {},
        spec_version=row["spec_version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
    )


def step_params(step: Step) -> dict[str, Any]:
    """Column values of a step row (without the ``seq`` identity)."""
    return {
        "run_id": step.run_id,
        "step_id": step.step_id,
        "step_name": step.step_name,
        "status": step.status,
        "input": dump_json(step.input),
        "output": dump_json(step.output),
        "error": dump_json(step.error),
        "attempt": step.attempt,
        "retry_after": step.retry_after,
        "created_at": step.created_at,
        "updated_at": step.updated_at,
        "started_at": step.started_at,
        "completed_at": step.completed_at,
    }


def step_from_row(row: Mapping[Any, Any]) -> Step:
    """A Step from a ``steps`` row."""
    return Step(
        run_id=row["run_id"],
        step_id=row["step_id"],
        step_name=row["step_name"],
        status=row["status"],
        input=load_json(row["input"]),
        output=load_json(row["output"]),
        error=load_json(row["error"]),
        attempt=row["attempt"],
        retry_after=row["retry_after"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
    )


def hook_params(hook: Hook) -> dict[str, Any]:
    """Column values of a hook row (without the ``seq`` identity)."""
    return {
        "hook_id": hook.hook_id,
        "run_id": hook.run_id,
        "token": hook.token,
        "status": hook.status,
        "metadata": dump_json(hook.metadata),
        "is_webhook": hook.is_webhook,
        "respond_with": dump_json(hook.respond_with),
        "created_at": hook.created_at,
        "updated_at": hook.updated_at,
    }


def hook_from_row(row: Mapping[Any, Any]) -> Hook:
    """A Hook from a ``hooks`` row."""
    return Hook(
        run_id=row["run_id"],
        hook_id=row["hook_id"],
        token=row["token"],
        status=row["status"],
        metadata=load_json(row["metadata"]),
        is_webhook=row["is_webhook"],
        respond_with=load_json(row["respond_with"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def wait_params(wait: Wait) -> dict[str, Any]:
    """Column values of a wait row (without the ``seq`` identity)."""
    return {
        "run_id": wait.run_id,
        "wait_id": wait.wait_id,
        "status": wait.status,
        "resume_at": wait.resume_at,
        "created_at": wait.created_at,
        "updated_at": wait.updated_at,
        "completed_at": wait.completed_at,
    }


def wait_from_row(row: Mapping[Any, Any]) -> Wait:
    """A Wait from a ``waits`` row."""
    return Wait(
        run_id=row["run_id"],
        wait_id=row["wait_id"],
        status=row["status"],
        resume_at=row["resume_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        completed_at=row["completed_at"],
    )


def event_params(event: Event) -> dict[str, Any]:
    """Column values of an events row (without the ``seq`` identity)."""
    return {
        "event_id": event.event_id,
        "run_id": event.run_id,
        "event_type": event.event_type,
        "correlation_id": event.correlation_id,
        "data": _encode(event.data),
        "created_at": event.created_at,
        "spec_version": event.spec_version,
    }


def event_from_row(row: Mapping[Any, Any]) -> Event:
    """An Event from an ``events`` row."""
    return Event(
        event_id=row["event_id"],
        run_id=row["run_id"],
        event_type=row["event_type"],
        correlation_id=row["correlation_id"],
        data=json.loads(row["data"]),
        created_at=row["created_at"],
        spec_version=row["spec_version"],
    )


def message_from_row(row: Mapping[Any, Any]) -> QueueMessage:
    """A QueueMessage from a ``queue_messages`` row."""
    return QueueMessage(
        message_id=row["message_id"],
        queue=row["queue"],
        payload=json.loads(row["payload"]),
        attempt=row["attempt"],
        idempotency_key=row["idempotency_key"],
        run_id=row["run_id"],
        created_at=row["created_at"],
        visible_at=row["visible_at"],
    )
