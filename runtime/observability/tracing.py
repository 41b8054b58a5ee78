"""OpenTelemetry spans: ``start()``, the run, each step attempt, waits and hooks.

One trace follows a run from the code that started it to its steps and its child
runs, across worker processes and restarts:

- ``start_span`` (``wfkit.start <workflow>``, in the caller's trace) returns the
  W3C trace context of that span; ``start()`` stores it in ``run_created``'s
  ``execution_context["trace_context"]``, so it lives as long as the run.
- Each workflow message a worker handles is a ``wfkit.run <workflow>`` span
  (``handling_message`` + ``run_known``), a child of the stored context: a run
  resumed by another process after a restart continues the same trace.
- A step attempt (``step_attempt``) is a ``wfkit.step <step>`` span, current
  while the step body runs: under the ``wfkit.run`` span that started it inline,
  else (a queued attempt, a retry) under the stored context. A child run started
  in a step stores *that* span's context, so its spans hang below the step.
- A wait becomes a ``wfkit.wait`` span when the worker completes it (from its
  creation to then); a hook a ``wfkit.hook`` span when a payload reaches it (from
  its creation to the payload), written by the process that resumed it.

A run whose start stored no context (started where OpenTelemetry was off) still
gets one trace: its spans hang below a remote parent whose ids are derived from
the run id.

Rejected: one span for the run's whole life. A span starts and ends in one
process, and a run outlives processes; a span emitted when the run ends, with
its start time back-dated, could not be the parent of the spans its steps made
earlier. The DevKit and Temporal also make one span per handling.

With no ``TracerProvider`` configured every function here returns a shared no-op
(``otel.tracer()`` is None); metrics go through ``metrics`` either way.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from wfkit.runtime.observability import metrics
from wfkit.runtime.observability.otel import tracer
from wfkit.worlds.base import EventRequest, Hook, Run, Step

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "TRACE_CONTEXT_KEY",
    "RunHandling",
    "StartSpan",
    "StepAttempt",
    "handling_message",
    "hook_resumed",
    "run_ended",
    "run_known",
    "short_name",
    "start_span",
    "step_attempt",
    "waits_completed",
]

TRACE_CONTEXT_KEY = "trace_context"
"""The key of ``execution_context`` that holds the run's W3C trace context (a
``traceparent``/``tracestate``/``baggage`` carrier)."""


def short_name(function_id: str) -> str:
    """The qualname part of a workflow or step id, for span names
    (``workflow//./examples/order//checkout`` -> ``checkout``)."""
    return function_id.rsplit("//", 1)[-1]


def _error_type(error: BaseException) -> str:
    cls = type(error)
    return f"{cls.__module__}.{cls.__qualname__}"


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


# --- parents ------------------------------------------------------------------------------


def _stored_parent(run: Run) -> Context:
    """The context ``start()`` stored for ``run``; without one, a remote parent
    derived from the run id (so the run's spans still share one trace)."""
    from opentelemetry import propagate, trace

    carrier = run.execution_context.get(TRACE_CONTEXT_KEY)
    if isinstance(carrier, Mapping) and carrier:
        extracted = propagate.extract({str(k): str(v) for k, v in carrier.items()})
        if trace.get_current_span(extracted).get_span_context().is_valid:
            return extracted
    digest = hashlib.blake2b(run.run_id.encode(), digest_size=24).digest()
    derived = trace.SpanContext(
        trace_id=int.from_bytes(digest[:16]) or 1,
        span_id=int.from_bytes(digest[16:]) or 1,
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(derived))


def _run_parent(run: Run) -> Context:
    """The ``wfkit.run`` span handling ``run`` in this task (inline steps inherit it),
    else the stored context."""
    handling = _HANDLING.get()
    if handling is not None and handling.run_id == run.run_id and handling.context is not None:
        return handling.context
    return _stored_parent(run)


# --- start() ------------------------------------------------------------------------------


class StartSpan:
    """``with start_span(...) as execution_context:`` -- the run's ``execution_context``
    (with the trace context when tracing is on) while ``start()`` writes the run."""

    def __enter__(self) -> dict[str, object]:
        return {}

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class _TracedStart(StartSpan):
    def __init__(self, on: Tracer, workflow_name: str, run_id: str) -> None:
        from opentelemetry import trace

        self._span = on.start_span(
            f"wfkit.start {short_name(workflow_name)}",
            kind=trace.SpanKind.PRODUCER,
            attributes={"wfkit.workflow.name": workflow_name, "wfkit.run.id": run_id},
        )
        self._use = trace.use_span(self._span, end_on_exit=True)

    def __enter__(self) -> dict[str, object]:
        from opentelemetry import propagate

        self._use.__enter__()
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return {TRACE_CONTEXT_KEY: carrier} if carrier else {}

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._use.__exit__(exc_type, exc, tb)


_NO_START = StartSpan()


def start_span(workflow_name: str, run_id: str) -> StartSpan:
    """The ``wfkit.start`` span around writing a new run (a no-op when tracing is off).

    Args:
        workflow_name: the workflow id.
        run_id: the id the new run gets.

    Returns:
        A context manager whose value is the ``execution_context`` to store.
    """
    on = tracer()
    return _NO_START if on is None else _TracedStart(on, workflow_name, run_id)


# --- one workflow message ---------------------------------------------------------------


class RunHandling:
    """One workflow message being handled: a ``wfkit.run`` span from the message's
    arrival to the handler's end, started once the run record is known."""

    def __init__(self, run_id: str, delivery_attempt: int, on: Tracer | None) -> None:
        self.run_id = run_id
        self.context: Context | None = None
        self._delivery_attempt = delivery_attempt
        self._tracer = on
        self._began_ns = time.time_ns()
        self._span: Span | None = None
        self._token: Token[Context] | None = None
        self._handling_token: Token[RunHandling | None] | None = None
        self._ended = False

    def __enter__(self) -> RunHandling:
        self._handling_token = _HANDLING.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handling_token is not None:
            _HANDLING.reset(self._handling_token)
        span = self._span
        if span is None:
            return
        from opentelemetry import context, trace

        if exc is not None:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        elif not self._ended:
            span.set_attribute("wfkit.run.outcome", "suspended")
        span.end()
        if self._token is not None:
            context.detach(self._token)

    def start(self, run: Run, replay: Literal["full", "cached"]) -> None:
        """Start the span, now that the run record (and its stored context) is known."""
        if self._span is not None or self._tracer is None:
            return
        from opentelemetry import context, trace

        self._span = self._tracer.start_span(
            f"wfkit.run {short_name(run.workflow_name)}",
            context=_stored_parent(run),
            kind=trace.SpanKind.CONSUMER,
            start_time=self._began_ns,
            attributes={
                "wfkit.run.id": run.run_id,
                "wfkit.workflow.name": run.workflow_name,
                "wfkit.replay": replay,
                "wfkit.delivery_attempt": self._delivery_attempt,
            },
        )
        self.context = trace.set_span_in_context(self._span)
        self._token = context.attach(self.context)

    def ended(self, request: EventRequest) -> None:
        """The handler wrote the run's ``run_completed``/``run_failed``."""
        self._ended = True
        span = self._span
        if span is None:
            return
        from opentelemetry import trace

        if request.event_type == "run_completed":
            span.set_attribute("wfkit.run.outcome", "completed")
            return
        error = request.data.get("error") or {}
        span.set_attribute("wfkit.run.outcome", "failed")
        span.set_attribute("wfkit.error.code", str(request.data.get("error_code")))
        span.set_attribute("error.type", str(error.get("type")))
        span.set_status(
            trace.Status(trace.StatusCode.ERROR, f"{error.get('type')}: {error.get('message')}")
        )


class _NoHandling(RunHandling):
    def __enter__(self) -> RunHandling:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


_HANDLING: ContextVar[RunHandling | None] = ContextVar("wfkit_run_handling", default=None)
_NO_HANDLING = _NoHandling("", 0, None)


def handling_message(run_id: str, delivery_attempt: int) -> RunHandling:
    """``with handling_message(run_id, n):`` around the handling of one workflow message.

    The ``wfkit.run`` span starts at ``run_known`` (the stored trace context is on
    the run record, which a cold handler reads first) but is dated from here.
    """
    on = tracer()
    return _NO_HANDLING if on is None else RunHandling(run_id, delivery_attempt, on)


def run_known(run: Run, *, replay: Literal["full", "cached"]) -> None:
    """The handler in this task has ``run``'s record: start its ``wfkit.run`` span
    (a no-op when it runs already, or when tracing is off)."""
    handling = _HANDLING.get()
    if handling is not None and handling.run_id == run.run_id:
        handling.start(run, replay)


def run_ended(run: Run, request: EventRequest) -> None:
    """The handler wrote ``run_completed`` or ``run_failed`` (``request``): mark its span
    and count the run."""
    failed = request.event_type == "run_failed"
    code = str(request.data.get("error_code") or "RUNTIME_ERROR") if failed else None
    metrics.record_run_ended(run.workflow_name, error_code=code)
    handling = _HANDLING.get()
    if handling is not None and handling.run_id == run.run_id:
        handling.ended(request)


# --- step attempts ------------------------------------------------------------------------

_OUTCOMES = {"step_completed": "completed", "step_failed": "failed", "step_retrying": "retrying"}


class StepAttempt:
    """``with step_attempt(...) as attempt:`` around one step attempt; ``attempt.finish``
    records what it came to. The base class records nothing."""

    def __enter__(self) -> StepAttempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def finish(self, request: EventRequest, error: BaseException | None) -> None:
        """Record the attempt's outcome (the request to write) and its error, if any."""


class _ObservedStepAttempt(StepAttempt):
    def __init__(
        self,
        on: Tracer | None,
        made: metrics.Instruments | None,
        run: Run,
        step: Step,
        inline: bool,
    ) -> None:
        self._tracer = on
        self._instruments = made
        self._run = run
        self._step = step
        self._inline = inline
        self._span: Span | None = None
        self._token: Token[Context] | None = None
        self._began = 0.0

    def __enter__(self) -> StepAttempt:
        self._began = time.perf_counter()
        if self._tracer is None:
            return self
        from opentelemetry import context, trace

        step = self._step
        self._span = self._tracer.start_span(
            f"wfkit.step {short_name(step.step_name)}",
            context=_run_parent(self._run),
            kind=trace.SpanKind.INTERNAL if self._inline else trace.SpanKind.CONSUMER,
            attributes={
                "wfkit.run.id": self._run.run_id,
                "wfkit.workflow.name": self._run.workflow_name,
                "wfkit.step.id": step.step_id,
                "wfkit.step.name": step.step_name,
                "wfkit.step.attempt": step.attempt,
                "wfkit.step.inline": self._inline,
            },
        )
        # Current while the body runs: the user's own spans, and a child run's
        # start(), hang below this attempt.
        self._token = context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._span is None:
            return
        from opentelemetry import context, trace

        if exc is not None:  # the attempt itself was cancelled or interrupted
            self._span.record_exception(exc)
            self._span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
        if self._token is not None:
            context.detach(self._token)
        self._span.end()

    def finish(self, request: EventRequest, error: BaseException | None) -> None:
        outcome = _OUTCOMES.get(request.event_type, request.event_type)
        made = self._instruments
        if made is not None:
            name = {"wfkit.step.name": self._step.step_name}
            counter = {
                "completed": made.steps_completed,
                "failed": made.steps_failed,
                "retrying": made.steps_retried,
            }.get(outcome)
            if counter is not None:
                counter.add(1, name)
            made.step_duration.record(
                time.perf_counter() - self._began, {**name, "wfkit.step.outcome": outcome}
            )
        span = self._span
        if span is None:
            return
        from opentelemetry import trace

        span.set_attribute("wfkit.step.outcome", outcome)
        span.set_attribute("wfkit.step.retry", outcome == "retrying")
        retry_after = request.data.get("retry_after")
        if outcome == "retrying" and isinstance(retry_after, str):
            span.set_attribute("wfkit.step.retry_after", retry_after)
        if error is not None:
            span.record_exception(error)
            span.set_attribute("error.type", _error_type(error))
            span.set_status(
                trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}")
            )


_NO_STEP_ATTEMPT = StepAttempt()


def step_attempt(run: Run, step: Step, *, inline: bool) -> StepAttempt:
    """Observe one attempt of ``step`` (already ``step_started``): a ``wfkit.step``
    span current while it runs, and the step metrics.

    Args:
        run: the step's run (its stored trace context is the parent of a queued attempt).
        step: the step record of this attempt.
        inline: run by the handler that created it (its ``wfkit.run`` span is the parent).

    Returns:
        A context manager; call its ``finish`` with the attempt's outcome.
    """
    on = tracer()
    made = metrics.instruments()
    if on is None and made is None:
        return _NO_STEP_ATTEMPT
    return _ObservedStepAttempt(on, made, run, step, inline)


# --- waits and hooks ----------------------------------------------------------------------


def waits_completed(run: Run, waits: Iterable[tuple[str, datetime | None, datetime]]) -> None:
    """A ``wfkit.wait`` span for each wait this handler completes now.

    Args:
        run: the waits' run.
        waits: ``(correlation id, when the wait was created, its resume_at)``; a
            wait with no known creation time spans from its ``resume_at``.
    """
    on = tracer()
    if on is None:
        return
    parent = _run_parent(run)
    for correlation_id, created_at, resume_at in waits:
        span = on.start_span(
            "wfkit.wait",
            context=parent,
            start_time=_ns(created_at or resume_at),
            attributes={
                "wfkit.run.id": run.run_id,
                "wfkit.workflow.name": run.workflow_name,
                "wfkit.wait.id": correlation_id,
                "wfkit.wait.resume_at": resume_at.isoformat(),
            },
        )
        span.end()


def hook_resumed(run: Run, hook: Hook) -> None:
    """A ``wfkit.hook`` span from ``hook``'s creation to the payload just written for it,
    in the run's trace and linked to the caller's span (never naming the token: it is
    a secret)."""
    on = tracer()
    if on is None:
        return
    from opentelemetry import trace

    caller = trace.get_current_span().get_span_context()
    span = on.start_span(
        "wfkit.hook",
        context=_stored_parent(run),
        kind=trace.SpanKind.PRODUCER,
        start_time=_ns(hook.created_at),
        links=[trace.Link(caller)] if caller.is_valid else None,
        attributes={
            "wfkit.run.id": run.run_id,
            "wfkit.workflow.name": run.workflow_name,
            "wfkit.hook.id": hook.hook_id,
            "wfkit.hook.webhook": hook.is_webhook,
        },
    )
    span.end()
