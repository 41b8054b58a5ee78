"""wfkit: durable workflows for Python.

Mark ``async def`` functions with ``"use workflow"`` or ``"use step"``; build with
``python -m wfbuild build``; start runs with :func:`start` and work them with
``wfkit worker`` (or :func:`run` in scripts). This package only re-exports: the
code lives in ``runtime`` and ``worlds``.
"""

from runtime.builtins import FetchResponse, fetch
from runtime.client import (
    Run,
    cancel_run,
    get_hook_by_token,
    get_hook_by_token_sync,
    get_run,
    get_run_sync,
    resume_hook,
    resume_hook_sync,
    start,
    start_sync,
)
from runtime.context import StepMetadata, WorkflowMetadata
from runtime.errors import (
    CorruptedEventLogError,
    EntityConflictError,
    FatalError,
    HookConflictError,
    HookNotFoundError,
    NotInWorkflowError,
    ReplayDivergenceError,
    RetryableError,
    RunNotFoundError,
    SerializationError,
    StepError,
    StepNotRegisteredError,
    WfkitError,
    WorkflowCalledDirectlyError,
    WorkflowNotRegisteredError,
    WorkflowRunCancelledError,
    WorkflowRunFailedError,
    WorldError,
)
from runtime.streams import StreamHandle, get_writable
from runtime.webhooks import Request, Response, Webhook, create_webhook, resume_webhook
from runtime.workflow_api import (
    Hook,
    TypedHook,
    create_hook,
    define_hook,
    get_step_metadata,
    get_workflow_metadata,
    sleep,
)
from runtime.world_config import get_world, set_world
from wfkit._dev import build, format_timeline, run, wait_for_hook, worker

__all__ = [
    "CorruptedEventLogError",
    "EntityConflictError",
    "FatalError",
    "FetchResponse",
    "Hook",
    "HookConflictError",
    "HookNotFoundError",
    "NotInWorkflowError",
    "ReplayDivergenceError",
    "Request",
    "Response",
    "RetryableError",
    "Run",
    "RunNotFoundError",
    "SerializationError",
    "StepError",
    "StepMetadata",
    "StepNotRegisteredError",
    "StreamHandle",
    "TypedHook",
    "Webhook",
    "WfkitError",
    "WorkflowCalledDirectlyError",
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
