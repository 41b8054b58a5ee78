"""What the engine tells operators when a run ends or a step attempt fails.

One function per moment, each doing all of it: the log record (with the run and
step ids in the message and as ``extra`` fields), the span's status, the count.
The records go to the logger of the engine part that saw it happen:
``wfkit.orchestrator`` for runs, ``wfkit.executor`` for step attempts.
"""

from __future__ import annotations

import logging

from wfkit.runtime.observability import tracing
from wfkit.runtime.observability.logs import log_fields
from wfkit.worlds.base import EventRequest, Run, Step

__all__ = ["run_ended", "step_attempt_failed"]

_runs = logging.getLogger("wfkit.orchestrator")
_steps = logging.getLogger("wfkit.executor")


def _type_name(error: BaseException) -> str:
    cls = type(error)
    return f"{cls.__module__}.{cls.__qualname__}"


def run_ended(run: Run, request: EventRequest, error: BaseException | None) -> None:
    """A handler wrote ``request`` (``run_completed`` or ``run_failed``) for ``run``.

    A failure is an error record naming its code (``REPLAY_DIVERGENCE`` says that
    the code changed under the run; an unregistered workflow or unreadable input
    is ``RUNTIME_ERROR`` with the error's type), with ``error``'s traceback when
    there is one; a completion is a debug record.

    Args:
        run: the run record.
        request: the run-ending request as written.
        error: the exception behind a failure, when the handler has it.
    """
    tracing.run_ended(run, request)
    if request.event_type == "run_completed":
        _runs.debug(
            "run %s (%s) completed", run.run_id, run.workflow_name, extra=log_fields(run.run_id)
        )
        return
    code = request.data.get("error_code")
    info = request.data.get("error") or {}
    fields = log_fields(
        run.run_id, workflow=run.workflow_name, error_code=code, error_type=info.get("type")
    )
    if code == "CORRUPTED_EVENT_LOG":
        # One line: the message names the run, the event and what is wrong with it,
        # and a traceback of the reader says nothing more.
        _runs.error(
            "run %s (%s) failed with CORRUPTED_EVENT_LOG: %s",
            run.run_id,
            run.workflow_name or "unknown workflow",
            info.get("message"),
            extra=fields,
        )
        return
    if code == "REPLAY_DIVERGENCE":
        _runs.error(
            "run %s (%s) failed with REPLAY_DIVERGENCE: the workflow's code changed since "
            "the run started: %s",
            run.run_id,
            run.workflow_name,
            info.get("message"),
            extra=fields,
        )
        return
    _runs.error(
        "run %s (%s) failed with %s: %s: %s",
        run.run_id,
        run.workflow_name,
        code,
        info.get("type"),
        info.get("message"),
        exc_info=error,
        extra=fields,
    )


def step_attempt_failed(run: Run, step: Step, request: EventRequest, error: BaseException) -> None:
    """An attempt of ``step`` raised ``error`` and ``request`` says what happens next.

    A retry (``step_retrying``) is a warning naming the error and when the next
    attempt is due; a step that failed for good (``step_failed``: ``FatalError``,
    out of retries, unregistered or unserializable) is an error with the traceback.
    """
    fields = log_fields(
        run.run_id,
        step.step_id,
        workflow=run.workflow_name,
        step_name=step.step_name,
        attempt=step.attempt,
        error_type=_type_name(error),
    )
    if request.event_type == "step_retrying":
        retry_after = request.data.get("retry_after")
        fields["retry_after"] = retry_after
        _steps.warning(
            "step %s (%s) of run %s failed on attempt %d and will retry at %s: %s: %s",
            step.step_id,
            step.step_name,
            run.run_id,
            step.attempt,
            retry_after,
            type(error).__name__,
            error,
            extra=fields,
        )
        return
    _steps.error(
        "step %s (%s) of run %s failed on attempt %d: %s: %s",
        step.step_id,
        step.step_name,
        run.run_id,
        step.attempt,
        type(error).__name__,
        error,
        exc_info=error,
        extra=fields,
    )
