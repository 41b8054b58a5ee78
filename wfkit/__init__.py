"""wfkit: durable workflows for Python.

Mark ``async def`` functions with ``"use workflow"`` or ``"use step"``; build with
``python -m wfbuild build``; start runs with :func:`start` and work them with
``wfkit worker`` (or :func:`run` in scripts).

This package only re-exports; the code lives in ``wfkit.runtime`` and ``wfkit.worlds``
(and the build side in ``wfkit.transformer``). The names load lazily (PEP 562), so
``import wfkit.transformer`` in a build never pulls in the runtime, pydantic or
SQLAlchemy, and a worker never loads the transformer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    __version__: str

    from wfkit._dev import (
        build,
        format_timeline,
        run,
        wait_for_hook,
        worker,
    )
    from wfkit.runtime.api.builtin_steps import (
        FetchResponse,
        fetch,
    )
    from wfkit.runtime.api.client import (
        HookInfo,
        Run,
        cancel_run,
        cancel_run_sync,
        get_hook_by_token,
        get_hook_by_token_sync,
        get_run,
        resume_hook,
        resume_hook_sync,
        retry_run,
        retry_run_sync,
        start,
        start_sync,
    )
    from wfkit.runtime.api.start_many import (
        Args,
        start_many,
        start_many_sync,
    )
    from wfkit.runtime.api.step_options import (
        step_options,
    )
    from wfkit.runtime.api.streams import (
        StreamHandle,
        get_writable,
    )
    from wfkit.runtime.api.webhooks import (
        Request,
        Response,
        Webhook,
        create_webhook,
        resume_webhook,
        resume_webhook_sync,
    )
    from wfkit.runtime.api.workflow import (
        Hook,
        TypedHook,
        create_hook,
        define_hook,
        get_step_metadata,
        get_workflow_metadata,
        patched,
        sleep,
    )
    from wfkit.runtime.context import (
        StepMetadata,
        WorkflowMetadata,
    )
    from wfkit.runtime.errors import (
        CorruptedEventLogError,
        CorruptedLogError,
        DeploymentNotFoundError,
        EntityConflictError,
        FatalError,
        HookConflictError,
        HookDisposedError,
        HookNotFoundError,
        InvalidBuildError,
        InvalidEventError,
        InvalidRunIdError,
        NotInWorkflowError,
        PayloadDecryptionError,
        ReplayDivergenceError,
        RetryableError,
        RunDeadlineExceededError,
        RunNotFoundError,
        ScheduleNotFoundError,
        SchemaVersionError,
        SerializationError,
        StepError,
        StepNotFoundError,
        StepNotRegisteredError,
        WaitNotFoundError,
        WfkitError,
        WorkflowCalledDirectlyError,
        WorkflowDeadlockError,
        WorkflowIOError,
        WorkflowNotRegisteredError,
        WorkflowRunCancelledError,
        WorkflowRunFailedError,
        WorldError,
    )
    from wfkit.runtime.flow.cron import CronError
    from wfkit.runtime.flow.queues import Queue
    from wfkit.runtime.flow.schedules import schedule, schedule_sync
    from wfkit.runtime.serialization import register_type
    from wfkit.runtime.serialization.keys import configure_payloads
    from wfkit.runtime.world_config import (
        get_world,
        set_world,
    )

_EXPORTS: dict[str, str] = {
    "step_options": "wfkit.runtime.api.step_options",
    "resume_webhook_sync": "wfkit.runtime.api.webhooks",
    "retry_run_sync": "wfkit.runtime.api.client",
    "cancel_run_sync": "wfkit.runtime.api.client",
    "HookInfo": "wfkit.runtime.api.client",
    "FetchResponse": "wfkit.runtime.api.builtin_steps",
    "fetch": "wfkit.runtime.api.builtin_steps",
    "Run": "wfkit.runtime.api.client",
    "cancel_run": "wfkit.runtime.api.client",
    "get_hook_by_token": "wfkit.runtime.api.client",
    "get_hook_by_token_sync": "wfkit.runtime.api.client",
    "get_run": "wfkit.runtime.api.client",
    "resume_hook": "wfkit.runtime.api.client",
    "retry_run": "wfkit.runtime.api.client",
    "resume_hook_sync": "wfkit.runtime.api.client",
    "start": "wfkit.runtime.api.client",
    "start_sync": "wfkit.runtime.api.client",
    "Args": "wfkit.runtime.api.start_many",
    "start_many": "wfkit.runtime.api.start_many",
    "start_many_sync": "wfkit.runtime.api.start_many",
    "StepMetadata": "wfkit.runtime.context",
    "WorkflowMetadata": "wfkit.runtime.context",
    "CorruptedEventLogError": "wfkit.runtime.errors",
    "CorruptedLogError": "wfkit.runtime.errors",
    "DeploymentNotFoundError": "wfkit.runtime.errors",
    "InvalidBuildError": "wfkit.runtime.errors",
    "InvalidEventError": "wfkit.runtime.errors",
    "InvalidRunIdError": "wfkit.runtime.errors",
    "EntityConflictError": "wfkit.runtime.errors",
    "FatalError": "wfkit.runtime.errors",
    "HookConflictError": "wfkit.runtime.errors",
    "HookDisposedError": "wfkit.runtime.errors",
    "HookNotFoundError": "wfkit.runtime.errors",
    "NotInWorkflowError": "wfkit.runtime.errors",
    "PayloadDecryptionError": "wfkit.runtime.errors",
    "ReplayDivergenceError": "wfkit.runtime.errors",
    "RetryableError": "wfkit.runtime.errors",
    "RunNotFoundError": "wfkit.runtime.errors",
    "RunDeadlineExceededError": "wfkit.runtime.errors",
    "ScheduleNotFoundError": "wfkit.runtime.errors",
    "CronError": "wfkit.runtime.flow.cron",
    "Queue": "wfkit.runtime.flow.queues",
    "schedule": "wfkit.runtime.flow.schedules",
    "schedule_sync": "wfkit.runtime.flow.schedules",
    "SchemaVersionError": "wfkit.runtime.errors",
    "SerializationError": "wfkit.runtime.errors",
    "StepError": "wfkit.runtime.errors",
    "StepNotFoundError": "wfkit.runtime.errors",
    "StepNotRegisteredError": "wfkit.runtime.errors",
    "WaitNotFoundError": "wfkit.runtime.errors",
    "WfkitError": "wfkit.runtime.errors",
    "WorkflowCalledDirectlyError": "wfkit.runtime.errors",
    "WorkflowDeadlockError": "wfkit.runtime.errors",
    "WorkflowIOError": "wfkit.runtime.errors",
    "WorkflowNotRegisteredError": "wfkit.runtime.errors",
    "WorkflowRunCancelledError": "wfkit.runtime.errors",
    "WorkflowRunFailedError": "wfkit.runtime.errors",
    "WorldError": "wfkit.runtime.errors",
    "StreamHandle": "wfkit.runtime.api.streams",
    "get_writable": "wfkit.runtime.api.streams",
    "Request": "wfkit.runtime.api.webhooks",
    "Response": "wfkit.runtime.api.webhooks",
    "Webhook": "wfkit.runtime.api.webhooks",
    "create_webhook": "wfkit.runtime.api.webhooks",
    "resume_webhook": "wfkit.runtime.api.webhooks",
    "Hook": "wfkit.runtime.api.workflow",
    "TypedHook": "wfkit.runtime.api.workflow",
    "create_hook": "wfkit.runtime.api.workflow",
    "define_hook": "wfkit.runtime.api.workflow",
    "get_step_metadata": "wfkit.runtime.api.workflow",
    "get_workflow_metadata": "wfkit.runtime.api.workflow",
    "sleep": "wfkit.runtime.api.workflow",
    "patched": "wfkit.runtime.api.workflow",
    "configure_payloads": "wfkit.runtime.serialization.keys",
    "register_type": "wfkit.runtime.serialization",
    "get_world": "wfkit.runtime.world_config",
    "set_world": "wfkit.runtime.world_config",
    "build": "wfkit._dev",
    "format_timeline": "wfkit._dev",
    "run": "wfkit._dev",
    "wait_for_hook": "wfkit._dev",
    "worker": "wfkit._dev",
}

__all__ = [
    "Args",
    "CorruptedEventLogError",
    "CorruptedLogError",
    "CronError",
    "DeploymentNotFoundError",
    "EntityConflictError",
    "FatalError",
    "FetchResponse",
    "Hook",
    "HookConflictError",
    "HookDisposedError",
    "HookInfo",
    "HookNotFoundError",
    "InvalidBuildError",
    "InvalidEventError",
    "InvalidRunIdError",
    "NotInWorkflowError",
    "PayloadDecryptionError",
    "Queue",
    "ReplayDivergenceError",
    "Request",
    "Response",
    "RetryableError",
    "Run",
    "RunDeadlineExceededError",
    "RunNotFoundError",
    "ScheduleNotFoundError",
    "SchemaVersionError",
    "SerializationError",
    "StepError",
    "StepMetadata",
    "StepNotFoundError",
    "StepNotRegisteredError",
    "StreamHandle",
    "TypedHook",
    "WaitNotFoundError",
    "Webhook",
    "WfkitError",
    "WorkflowCalledDirectlyError",
    "WorkflowDeadlockError",
    "WorkflowIOError",
    "WorkflowMetadata",
    "WorkflowNotRegisteredError",
    "WorkflowRunCancelledError",
    "WorkflowRunFailedError",
    "WorldError",
    "__version__",
    "build",
    "cancel_run",
    "cancel_run_sync",
    "configure_payloads",
    "create_hook",
    "create_webhook",
    "define_hook",
    "fetch",
    "format_timeline",
    "get_hook_by_token",
    "get_hook_by_token_sync",
    "get_run",
    "get_step_metadata",
    "get_workflow_metadata",
    "get_world",
    "get_writable",
    "patched",
    "register_type",
    "resume_hook",
    "resume_hook_sync",
    "resume_webhook",
    "resume_webhook_sync",
    "retry_run",
    "retry_run_sync",
    "run",
    "schedule",
    "schedule_sync",
    "set_world",
    "sleep",
    "start",
    "start_many",
    "start_many_sync",
    "start_sync",
    "step_options",
    "wait_for_hook",
    "worker",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = _installed_version()
        globals()[name] = value
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wfkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def _installed_version() -> str:
    """The installed distribution's version (``pyproject.toml``'s, through its metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wfkit")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
