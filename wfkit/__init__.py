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
    from wfkit._dev import (
        build as build,
    )
    from wfkit._dev import (
        format_timeline as format_timeline,
    )
    from wfkit._dev import (
        run as run,
    )
    from wfkit._dev import (
        wait_for_hook as wait_for_hook,
    )
    from wfkit._dev import (
        worker as worker,
    )
    from wfkit.runtime.api.builtin_steps import (
        FetchResponse as FetchResponse,
    )
    from wfkit.runtime.api.builtin_steps import (
        fetch as fetch,
    )
    from wfkit.runtime.api.client import (
        Run as Run,
    )
    from wfkit.runtime.api.client import (
        cancel_run as cancel_run,
    )
    from wfkit.runtime.api.client import (
        get_hook_by_token as get_hook_by_token,
    )
    from wfkit.runtime.api.client import (
        get_hook_by_token_sync as get_hook_by_token_sync,
    )
    from wfkit.runtime.api.client import (
        get_run as get_run,
    )
    from wfkit.runtime.api.client import (
        get_run_sync as get_run_sync,
    )
    from wfkit.runtime.api.client import (
        resume_hook as resume_hook,
    )
    from wfkit.runtime.api.client import (
        resume_hook_sync as resume_hook_sync,
    )
    from wfkit.runtime.api.client import (
        start as start,
    )
    from wfkit.runtime.api.client import (
        start_sync as start_sync,
    )
    from wfkit.runtime.api.streams import (
        StreamHandle as StreamHandle,
    )
    from wfkit.runtime.api.streams import (
        get_writable as get_writable,
    )
    from wfkit.runtime.api.webhooks import (
        Request as Request,
    )
    from wfkit.runtime.api.webhooks import (
        Response as Response,
    )
    from wfkit.runtime.api.webhooks import (
        Webhook as Webhook,
    )
    from wfkit.runtime.api.webhooks import (
        create_webhook as create_webhook,
    )
    from wfkit.runtime.api.webhooks import (
        resume_webhook as resume_webhook,
    )
    from wfkit.runtime.api.workflow import (
        Hook as Hook,
    )
    from wfkit.runtime.api.workflow import (
        TypedHook as TypedHook,
    )
    from wfkit.runtime.api.workflow import (
        create_hook as create_hook,
    )
    from wfkit.runtime.api.workflow import (
        define_hook as define_hook,
    )
    from wfkit.runtime.api.workflow import (
        get_step_metadata as get_step_metadata,
    )
    from wfkit.runtime.api.workflow import (
        get_workflow_metadata as get_workflow_metadata,
    )
    from wfkit.runtime.api.workflow import (
        sleep as sleep,
    )
    from wfkit.runtime.context import (
        StepMetadata as StepMetadata,
    )
    from wfkit.runtime.context import (
        WorkflowMetadata as WorkflowMetadata,
    )
    from wfkit.runtime.errors import (
        CorruptedEventLogError as CorruptedEventLogError,
        CorruptedLogError as CorruptedLogError,
    )
    from wfkit.runtime.errors import (
        EntityConflictError as EntityConflictError,
    )
    from wfkit.runtime.errors import (
        FatalError as FatalError,
    )
    from wfkit.runtime.errors import (
        HookConflictError as HookConflictError,
    )
    from wfkit.runtime.errors import (
        HookDisposedError as HookDisposedError,
    )
    from wfkit.runtime.errors import (
        HookNotFoundError as HookNotFoundError,
        InvalidEventError as InvalidEventError,
    )
    from wfkit.runtime.errors import (
        NotInWorkflowError as NotInWorkflowError,
    )
    from wfkit.runtime.errors import (
        ReplayDivergenceError as ReplayDivergenceError,
    )
    from wfkit.runtime.errors import (
        RetryableError as RetryableError,
    )
    from wfkit.runtime.errors import (
        RunNotFoundError as RunNotFoundError,
    )
    from wfkit.runtime.errors import (
        SchemaVersionError as SchemaVersionError,
    )
    from wfkit.runtime.errors import (
        SerializationError as SerializationError,
    )
    from wfkit.runtime.errors import (
        StepError as StepError,
    )
    from wfkit.runtime.errors import (
        StepNotFoundError as StepNotFoundError,
    )
    from wfkit.runtime.errors import (
        StepNotRegisteredError as StepNotRegisteredError,
    )
    from wfkit.runtime.errors import (
        WaitNotFoundError as WaitNotFoundError,
    )
    from wfkit.runtime.errors import (
        WfkitError as WfkitError,
    )
    from wfkit.runtime.errors import (
        WorkflowCalledDirectlyError as WorkflowCalledDirectlyError,
    )
    from wfkit.runtime.errors import (
        WorkflowDeadlockError as WorkflowDeadlockError,
    )
    from wfkit.runtime.errors import (
        WorkflowIOError as WorkflowIOError,
    )
    from wfkit.runtime.errors import (
        WorkflowNotRegisteredError as WorkflowNotRegisteredError,
    )
    from wfkit.runtime.errors import (
        WorkflowRunCancelledError as WorkflowRunCancelledError,
    )
    from wfkit.runtime.errors import (
        WorkflowRunFailedError as WorkflowRunFailedError,
    )
    from wfkit.runtime.errors import (
        WorldError as WorldError,
    )
    from wfkit.runtime.world_config import (
        get_world as get_world,
    )
    from wfkit.runtime.world_config import (
        set_world as set_world,
    )

_EXPORTS: dict[str, str] = {
    "FetchResponse": "wfkit.runtime.api.builtin_steps",
    "fetch": "wfkit.runtime.api.builtin_steps",
    "Run": "wfkit.runtime.api.client",
    "cancel_run": "wfkit.runtime.api.client",
    "get_hook_by_token": "wfkit.runtime.api.client",
    "get_hook_by_token_sync": "wfkit.runtime.api.client",
    "get_run": "wfkit.runtime.api.client",
    "get_run_sync": "wfkit.runtime.api.client",
    "resume_hook": "wfkit.runtime.api.client",
    "resume_hook_sync": "wfkit.runtime.api.client",
    "start": "wfkit.runtime.api.client",
    "start_sync": "wfkit.runtime.api.client",
    "StepMetadata": "wfkit.runtime.context",
    "WorkflowMetadata": "wfkit.runtime.context",
    "CorruptedEventLogError": "wfkit.runtime.errors",
    "CorruptedLogError": "wfkit.runtime.errors",
    "InvalidEventError": "wfkit.runtime.errors",
    "EntityConflictError": "wfkit.runtime.errors",
    "FatalError": "wfkit.runtime.errors",
    "HookConflictError": "wfkit.runtime.errors",
    "HookDisposedError": "wfkit.runtime.errors",
    "HookNotFoundError": "wfkit.runtime.errors",
    "NotInWorkflowError": "wfkit.runtime.errors",
    "ReplayDivergenceError": "wfkit.runtime.errors",
    "RetryableError": "wfkit.runtime.errors",
    "RunNotFoundError": "wfkit.runtime.errors",
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
    "get_world": "wfkit.runtime.world_config",
    "set_world": "wfkit.runtime.world_config",
    "build": "wfkit._dev",
    "format_timeline": "wfkit._dev",
    "run": "wfkit._dev",
    "wait_for_hook": "wfkit._dev",
    "worker": "wfkit._dev",
}

__all__ = [
    "CorruptedEventLogError",
    "CorruptedLogError",
    "EntityConflictError",
    "FatalError",
    "FetchResponse",
    "Hook",
    "HookConflictError",
    "HookDisposedError",
    "HookNotFoundError",
    "InvalidEventError",
    "NotInWorkflowError",
    "ReplayDivergenceError",
    "Request",
    "Response",
    "RetryableError",
    "Run",
    "RunNotFoundError",
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
    "build",
    "cancel_run",
    "create_hook",
    "create_webhook",
    "define_hook",
    "fetch",
    "format_timeline",
    "get_hook_by_token",
    "get_hook_by_token_sync",
    "get_run",
    "get_run_sync",
    "get_step_metadata",
    "get_workflow_metadata",
    "get_world",
    "get_writable",
    "resume_hook",
    "resume_hook_sync",
    "resume_webhook",
    "run",
    "set_world",
    "sleep",
    "start",
    "start_sync",
    "wait_for_hook",
    "worker",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wfkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
