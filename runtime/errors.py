"""Every error wfkit raises to users, and the control-flow exceptions it hides from them.

Error tree::

    WfkitError(Exception)                         wfkit.worlds.base
    ├── WorldError                                wfkit.worlds.base
    │   ├── EntityConflictError
    │   ├── RunNotFoundError
    │   ├── StepNotFoundError
    │   ├── HookNotFoundError
    │   ├── WaitNotFoundError
    │   ├── ScheduleNotFoundError
    │   ├── SchemaVersionError
    │   ├── InvalidEventError                     a refused event transition (nothing written)
    │   └── CorruptedLogError                     a stored log that does not fold
    ├── SerializationError                        a value that cannot cross a durable boundary
    │   └── PayloadDecryptionError                an encrypted payload this process cannot open
    ├── FatalError                                raised by a step: fail now, no retries
    ├── RetryableError                            raised by a step: retry after ``retry_after``
    ├── StepError                                 a step failure whose type could not be rebuilt
    ├── WorkflowRunFailedError                    run.result() of a failed run
    ├── WorkflowRunCancelledError                 run.result() of a cancelled run
    ├── WorkflowNotRegisteredError                a workflow ID missing from the manifest
    ├── StepNotRegisteredError                    a step ID missing from the manifest
    ├── InvalidBuildError                         a build that is unreadable or incomplete
    ├── DeploymentNotFoundError                   start(deployment=ID) of a deployment not known here
    ├── InvalidRunIdError                         start(run_id=…) of an id no URL or log can carry
    ├── WorkflowCalledDirectlyError               a workflow function called instead of start()ed
    ├── NotInWorkflowError                        sleep()/create_hook() outside a workflow
    ├── HookConflictError                         a hook token held by another live run
    ├── RunDeadlineExceededError                  the cause of a run failed by its deadline
    ├── ReplayDivergenceError                     the code no longer matches the run's log
    ├── CorruptedEventLogError                    an event no call consumes
    ├── HookDisposedError                         a disposed hook was awaited
    ├── WorkflowIOError                           a workflow used the loop for real I/O
    └── WorkflowDeadlockError                     a workflow waits on nothing durable, or
                                                  never yields to the replay loop

    WorkflowSuspension(BaseException)             internal: the replay went idle; never user-visible
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from wfkit.worlds.base import (
    CorruptedLogError,
    EntityConflictError,
    HookNotFoundError,
    InvalidEventError,
    RunNotFoundError,
    ScheduleNotFoundError,
    SchemaVersionError,
    StepNotFoundError,
    WaitNotFoundError,
    WfkitError,
    WorldError,
)

__all__ = [
    "CorruptedEventLogError",
    "CorruptedLogError",
    "DeploymentNotFoundError",
    "EntityConflictError",
    "FatalError",
    "HookConflictError",
    "HookDisposedError",
    "HookNotFoundError",
    "InvalidBuildError",
    "InvalidEventError",
    "InvalidRunIdError",
    "NotInWorkflowError",
    "PayloadDecryptionError",
    "ReplayDivergenceError",
    "RetryableError",
    "RunDeadlineExceededError",
    "RunNotFoundError",
    "ScheduleNotFoundError",
    "SchemaVersionError",
    "SerializationError",
    "StepError",
    "StepNotFoundError",
    "StepNotRegisteredError",
    "WaitNotFoundError",
    "WfkitError",
    "WorkflowCalledDirectlyError",
    "WorkflowDeadlockError",
    "WorkflowIOError",
    "WorkflowNotRegisteredError",
    "WorkflowRunCancelledError",
    "WorkflowRunFailedError",
    "WorkflowSuspension",
    "WorldError",
]


class SerializationError(WfkitError, TypeError):
    """A value wfkit cannot serialize (or a payload it cannot read back).

    Attributes:
        type_name: the offending value's type, e.g. ``"socket.socket"``.
        path: where it sits in the value, e.g. ``args[1]["items"][3]``.
    """

    def __init__(self, message: str, *, type_name: str = "", path: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.path = path


class PayloadDecryptionError(SerializationError):
    """A stored payload is encrypted and cannot be opened here: this process has no key
    with its key id, or authentication failed (a wrong key under that id, or altered bytes).

    Attributes:
        key_id: the key id stored with the payload.
    """

    def __init__(self, message: str, *, key_id: str = "") -> None:
        super().__init__(message, type_name="encrypted payload")
        self.key_id = key_id


class FatalError(WfkitError):
    """Raise from a step to fail it at once, without retries."""


class RetryableError(WfkitError):
    """Raise from a step to retry it after ``retry_after``.

    Args:
        message: what went wrong.
        retry_after: seconds (int/float), a ``timedelta``, a duration string
            such as ``"10s"``, or an aware ``datetime``; default 1 second.
    """

    def __init__(
        self, message: str = "", *, retry_after: float | timedelta | str | datetime | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StepError(WfkitError):
    """A step failed with an exception whose type could not be rebuilt here.

    Attributes:
        type_name: the original exception's qualified type name.
        message: its message.
        stack: its formatted traceback, from the process that ran the step.
    """

    def __init__(self, type_name: str, message: str, stack: str = "") -> None:
        super().__init__(f"{type_name}: {message}" if type_name else message)
        self.type_name = type_name
        self.message = message
        self.stack = stack


class WorkflowRunFailedError(WfkitError):
    """The run ended in ``failed``; ``cause`` is the workflow's exception as rebuilt here.

    Attributes:
        run_id: the run.
        cause: the rebuilt exception (its type when known, else StepError).
        error: the stored error info (type, message, stack).
        error_code: why the run failed, as its ``run_failed`` event records it:
            ``USER_ERROR`` (the workflow raised), ``REPLAY_DIVERGENCE`` (its code
            changed since the run started), ``CORRUPTED_EVENT_LOG``, ``RUN_DEADLINE_EXCEEDED``, ...; None when
            the log names none.
    """

    def __init__(
        self,
        run_id: str,
        cause: BaseException | None,
        error: dict[str, Any],
        error_code: str | None = None,
    ) -> None:
        message = error.get("message", "")
        type_name = error.get("type", "")
        super().__init__(f'Workflow run "{run_id}" failed: {type_name}: {message}')
        self.run_id = run_id
        self.cause = cause
        self.error = error
        self.error_code = error_code
        self.__cause__ = cause

    @property
    def stack(self) -> str:
        return str(self.error.get("stack", ""))


class WorkflowRunCancelledError(WfkitError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f'Workflow run "{run_id}" was cancelled')
        self.run_id = run_id


class WorkflowNotRegisteredError(WfkitError):
    pass


class StepNotRegisteredError(WfkitError):
    pass


class InvalidBuildError(WfkitError):
    """A build that cannot run: its manifest is unreadable, or modules it lists are missing
    (a worker refuses to start on one rather than fail live runs)."""


class DeploymentNotFoundError(WfkitError, LookupError):
    """``start(..., deployment=ID)`` named a deployment this process does not know (not
    loaded, not the current build, not kept under ``.wfkit/deployments/``), or one whose
    build does not list the workflow. Nothing was written."""


class InvalidRunIdError(WfkitError, ValueError):
    """``start(run_id=…)`` was given an id wfkit refuses: empty, too long, or holding
    ``/``, ``\\``, whitespace, NUL or another control character (or ``.``/``..``),
    which URLs, the inspector and logs cannot carry. Nothing was written."""


class WorkflowCalledDirectlyError(WfkitError):
    pass


class NotInWorkflowError(WfkitError, RuntimeError):
    pass


class HookConflictError(WfkitError):
    def __init__(self, token: str, conflicting_run_id: str | None = None) -> None:
        holder = f' (run "{conflicting_run_id}")' if conflicting_run_id else ""
        super().__init__(f'Hook token "{token}" is already in use by another workflow{holder}')
        self.token = token
        self.conflicting_run_id = conflicting_run_id


class RunDeadlineExceededError(WfkitError):
    """The cause of a run that ``start(..., deadline=…)`` failed: its deadline passed
    before it ended (error code ``RUN_DEADLINE_EXCEEDED``)."""


class ReplayDivergenceError(WfkitError):
    """The workflow's code no longer makes the calls its run's log records.

    Attributes:
        site: ``path:line`` of the workflow code where they part ways, when known.
        recorded: what the log records there (e.g. ``step charge('o-1')``).
        current: what the code does there now.
    """

    def __init__(
        self, message: str, *, site: str | None = None, recorded: str = "", current: str = ""
    ) -> None:
        super().__init__(message)
        self.site = site
        self.recorded = recorded
        self.current = current


class CorruptedEventLogError(WfkitError):
    pass


class HookDisposedError(WfkitError, RuntimeError):
    """A disposed hook was awaited."""


class WorkflowIOError(WfkitError, RuntimeError):
    """An event-loop facility that does I/O (sockets, executors, processes) was used in a workflow."""


class WorkflowDeadlockError(WfkitError, RuntimeError):
    """The workflow can never make progress, so its run fails instead of hanging: it
    waits on something no event can ever resolve, or it runs over the feed deadline
    without yielding to the replay loop (a busy loop; see ``wfkit.runtime.replay.watchdog``)."""


class WorkflowSuspension(BaseException):
    """Internal control flow: the workflow cannot proceed until the log has more events.

    A BaseException so that ``except Exception`` in user code cannot swallow it."""
