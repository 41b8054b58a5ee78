"""What ``from wfkit import ...`` gives: pinned, every name importable, every error a WfkitError."""

from __future__ import annotations

import subprocess
import sys

import pytest

import wfkit

PUBLIC = [
    "CorruptedEventLogError", "DeploymentNotFoundError",
    "CorruptedLogError", "CronError", "EntityConflictError", "FatalError", "FetchResponse", "Hook",
    "HookConflictError", "HookDisposedError", "HookNotFoundError",
    "InvalidBuildError", "InvalidEventError", "InvalidRunIdError", "NotInWorkflowError",
    "PayloadDecryptionError",
    "Queue", "ReplayDivergenceError", "Request", "Response", "RetryableError", "Run", "RunNotFoundError",
    "RunDeadlineExceededError", "ScheduleNotFoundError", "schedule", "schedule_sync",
    "SchemaVersionError", "SerializationError", "StepError", "StepMetadata", "StepNotFoundError",
    "StepNotRegisteredError", "StreamHandle", "TypedHook", "WaitNotFoundError", "Webhook",
    "WfkitError", "WorkflowCalledDirectlyError", "WorkflowDeadlockError", "WorkflowIOError",
    "WorkflowMetadata", "WorkflowNotRegisteredError", "WorkflowRunCancelledError",
    "WorkflowRunFailedError", "WorldError", "build", "cancel_run", "configure_payloads", "create_hook",
    "create_webhook", "define_hook", "fetch", "format_timeline", "get_hook_by_token",
    "get_hook_by_token_sync", "get_run", "get_step_metadata",
    "get_workflow_metadata", "get_world", "get_writable", "patched", "register_type",
    "resume_hook",
    "resume_hook_sync",
    "resume_webhook", "retry_run", "run", "set_world", "sleep", "start", "start_sync", "wait_for_hook",
    "worker", "__version__", "HookInfo", "cancel_run_sync", "retry_run_sync", "resume_webhook_sync",
    "step_options", "Args", "start_many", "start_many_sync",
]  # fmt: skip


def test_all_is_pinned() -> None:
    assert sorted(wfkit.__all__) == sorted(PUBLIC)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_imports(name: str) -> None:
    value = getattr(wfkit, name)
    assert value is not None
    assert name in dir(wfkit)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        wfkit.nope  # noqa: B018


ERRORS = [name for name in PUBLIC if name.endswith("Error")]


@pytest.mark.parametrize("name", ERRORS)
def test_every_error_is_a_wfkit_error(name: str) -> None:
    cls = getattr(wfkit, name)
    assert issubclass(cls, wfkit.WfkitError) and issubclass(cls, Exception)
    assert cls.__module__.startswith("wfkit."), cls.__module__


def test_errors_show_under_the_wfkit_namespace() -> None:
    """A user sees ``wfkit.runtime.errors.FatalError`` in tracebacks, not ``runtime.errors``."""
    out = subprocess.run(
        [sys.executable, "-c", "import wfkit\ntry:\n raise wfkit.FatalError('x')\n"
         "except Exception as e:\n print(type(e).__module__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "wfkit.runtime.errors"
