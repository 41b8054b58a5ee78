"""Replay divergence: where a run's log and its workflow's code part ways, said in the user's terms.

A replay runs the workflow against its log, and every durable call must meet the
events the same call wrote the first time. When the code changed since the run
started (a step added, removed or renamed, called with other arguments; a sleep of
another length; a hook with another token) the first event that no longer fits
fails the run with ``REPLAY_DIVERGENCE`` and a message naming both sides at the
user's source line::

    examples/jobs.py:14: replay divergence in workflow pipeline (run wrun_…): the code
    changed since the run started: the log records step charge('o-1', 1999) here, the
    code now calls step refund('o-1')

What is checked, on each creation event (later events of a call need only the call):

- ``step_created``: the step id, then the serialized input (args, kwargs, closure
  values, ``self``), so a recorded result is never handed to a different call;
- ``hook_created`` / ``hook_conflict``: the token, when the workflow chose it (a
  default token is whatever the log recorded);
- ``wait_created``: ``resume_at``, to the millisecond;
- an event whose correlation id names a call of another kind (``wait_…`` where the
  code now makes a step call), or a call the code no longer makes by that point of
  the log (its id is this run's, but the code made fewer calls).

An event that no call of this run could have written (an id from elsewhere, a
second creation, an event before its creation) is still a corrupted log.

Cost. The input check compares the recorded and the current input as JSON-shaped
data with ``==``: one C-level walk, nothing encoded or hashed, on values the call
has already serialized for its own ``step_created``. Equal data short-circuits on
identity. ``True``, ``1`` and ``1.0`` compare equal, so a change between them is
not reported (a digest of canonical JSON would see it, at the price of encoding
both sides for every step of every replay).

Alternatives rejected: a digest of the input stored in ``step_created`` (the full
input is already there, and a digest could not say *what* differs); comparing
only step names (what the DevKit does: a result silently goes to another call when
the same step runs with other arguments in another order); treating every
unexpected event as a corrupted log (it blames the database for a code change).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wfkit.runtime.errors import ReplayDivergenceError
from wfkit.runtime.replay.calls import CallSite, HookCall, StepCall, WaitCall
from wfkit.runtime.replay.outcome import ReplayFailure
from wfkit.runtime.serialization import deserialize, deserialize_call
from wfkit.worlds.base import Event, parse_timestamp

__all__ = [
    "RunLabel",
    "check_hook_created",
    "check_step_created",
    "check_wait_created",
    "code_changed",
    "describe_call",
    "describe_event",
]

Call = StepCall | HookCall | WaitCall

_RESUME_AT_TOLERANCE = timedelta(milliseconds=1)
_CLIP = 60


@dataclass(frozen=True)
class RunLabel:
    """How a divergence message names the run: its workflow's short name and its id."""

    workflow: str
    run_id: str


def code_changed(
    run: RunLabel, *, site: CallSite | None, recorded: str, current: str, detail: str = ""
) -> ReplayFailure:
    """The failure for a divergence: the log records ``recorded`` where the code now ``current``.

    Args:
        run: the run, for the message.
        site: the user's source line where the two part ways, when known.
        recorded: what the log records there, e.g. ``step charge('o-1')``.
        current: what the code does now, as a verb phrase (``calls step refund('o-1')``).
        detail: appended in parentheses, e.g. which argument differs.

    Returns:
        A ``ReplayFailure`` with code ``REPLAY_DIVERGENCE``.
    """
    where = f"{site}: " if site is not None else ""
    suffix = f" ({detail})" if detail else ""
    message = (
        f"{where}replay divergence in workflow {run.workflow} (run {run.run_id}): the code "
        f"changed since the run started (or is not deterministic): the log records "
        f"{recorded} here, the code now {current}{suffix}"
    )
    error = ReplayDivergenceError(
        message,
        site=None if site is None else str(site),
        recorded=recorded,
        current=current,
    )
    return ReplayFailure(error, "REPLAY_DIVERGENCE")


# --- the checks, one per creation event ------------------------------------------------------


def check_step_created(run: RunLabel, call: StepCall, event: Event) -> ReplayFailure | None:
    """A ``step_created`` for ``call``: the same step, with the same input?"""
    name = event.data.get("step_name")
    recorded_input = event.data.get("input")
    if name != call.step_id:
        return code_changed(
            run,
            site=call.site,
            recorded=_describe_step(str(name), recorded_input, other=call.step_id),
            current="calls " + _describe_step(call.step_id, call.input, other=str(name)),
        )
    if recorded_input is None or recorded_input is call.input or recorded_input == call.input:
        return None  # (None: a log that did not record inputs)
    if _without_tracebacks(recorded_input) == _without_tracebacks(call.input):
        return None  # only an exception's traceback text differs (paths, wfkit's own lines)
    return code_changed(
        run,
        site=call.site,
        recorded=_describe_step(call.step_id, recorded_input),
        current="calls " + _describe_step(call.step_id, call.input),
        detail=_input_difference(recorded_input, call.input),
    )


def check_hook_created(run: RunLabel, call: HookCall, event: Event) -> ReplayFailure | None:
    """A ``hook_created`` / ``hook_conflict`` for ``call``: the token the workflow chose?"""
    token = event.data.get("token")
    if not call.token_given or not isinstance(token, str) or token == call.token:
        return None
    return code_changed(
        run,
        site=call.site,
        recorded=f"a hook with token {token!r}",
        current=f"creates a hook with token {call.token!r}",
    )


def check_wait_created(run: RunLabel, call: WaitCall, event: Event) -> ReplayFailure | None:
    """A ``wait_created`` for ``call``: the same wake-up time (to the millisecond)?"""
    raw = event.data.get("resume_at")
    if raw is None:
        return None
    recorded = parse_timestamp(raw)
    if abs(recorded - call.resume_at) <= _RESUME_AT_TOLERANCE:
        return None
    return code_changed(
        run,
        site=call.site,
        recorded=_describe_wait(recorded, call.called_at),
        current="waits " + _describe_wait(call.resume_at, call.called_at, article=False),
    )


# --- descriptions -----------------------------------------------------------------------------


def describe_call(call: Call, *, verb: bool = True) -> str:
    """What the code does with ``call``: ``calls step add(1, 2)``, or with ``verb=False``
    the call itself: ``step add(1, 2)``."""
    if isinstance(call, StepCall):
        noun = _describe_step(call.step_id, call.input)
        return f"calls {noun}" if verb else noun
    if isinstance(call, WaitCall):
        if verb:
            return "waits " + _describe_wait(call.resume_at, call.called_at, article=False)
        return _describe_wait(call.resume_at, call.called_at)
    noun = f"a hook with token {call.token!r}"
    return f"creates {noun}" if verb else noun


def describe_event(event: Event) -> str:
    """What a log event records, as a noun phrase: ``step charge('o-1')``."""
    data = event.data
    match event.event_type:
        case "step_created":
            return _describe_step(str(data.get("step_name")), data.get("input"))
        case "wait_created":
            return f"a durable wait until {data.get('resume_at')}"
        case "hook_created" | "hook_conflict":
            return f"a hook with token {data.get('token')!r}"
        case _:
            kind = event.event_type.partition("_")[0]
            return f"{event.event_type} for the {kind} call {event.correlation_id}"


def _short_name(step_id: str) -> str:
    return step_id.rpartition("//")[2] or step_id


def _describe_step(step_id: str, data: Any, *, other: str | None = None) -> str:
    # The short name, unless it would not tell the two steps apart.
    name = _short_name(step_id)
    if other is not None and _short_name(other) == name:
        name = step_id
    if not isinstance(data, dict):
        return f"step {name}"
    try:
        args, kwargs, _closure, _this = deserialize_call(data)
    except Exception:  # an input this build cannot read: show it as stored
        return f"step {name} with input {_clip(json.dumps(data, default=str))}"
    parts = [_clip(repr(a)) for a in args] + [f"{k}={_clip(repr(v))}" for k, v in kwargs.items()]
    return f"step {name}({', '.join(parts)})"


def _describe_wait(resume_at: datetime, called_at: datetime, *, article: bool = True) -> str:
    seconds = (resume_at - called_at).total_seconds()
    text = f"{seconds:g} s (until {resume_at.isoformat()})"
    return f"a durable wait of {text}" if article else text


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 1] + "…"


def _input_difference(recorded: Any, current: dict[str, Any]) -> str:
    """Which part of a step's input differs, e.g. ``args[1] differs``."""
    if not isinstance(recorded, dict):
        return "the recorded input is not a call's input"
    old_args, new_args = recorded.get("args"), current.get("args")
    if old_args != new_args:
        if isinstance(old_args, list) and isinstance(new_args, list):
            if len(old_args) != len(new_args):
                return f"{len(old_args)} positional arguments recorded, {len(new_args)} now"
            pairs = zip(old_args, new_args, strict=True)
            return f"args[{next(i for i, (a, b) in enumerate(pairs) if a != b)}] differs"
        return "the arguments differ"
    for key in ("kwargs", "closure"):
        old, new = recorded.get(key), current.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            names = sorted(set(old) ^ set(new))
            if names:
                return f"{key} {', '.join(names)} added or removed"
            return f"{key}[{next(k for k in old if old[k] != new[k])!r}] differs"
        return f"{key} differs"
    old_this, new_this = recorded.get("this"), current.get("this")
    if old_this != new_this:
        return f"self differs: {_render(old_this)} recorded, {_render(new_this)} now"
    return "the input differs"


def _without_tracebacks(value: Any) -> Any:
    """``value`` without the traceback text of serialized exceptions.

    An exception passed to a step carries its formatted traceback, which names files
    by absolute path and wfkit's own frames by line: it differs between machines and
    wfkit versions while the call is the same one.
    """
    if isinstance(value, list):
        return [_without_tracebacks(v) for v in value]
    if isinstance(value, dict):
        exception = value.get("$t") == "exc"
        return {
            k: _without_tracebacks(v) for k, v in value.items() if not (exception and k == "stack")
        }
    return value


def _render(value: Any) -> str:
    try:
        return _clip(repr(deserialize(value)))
    except Exception:
        return _clip(json.dumps(value, default=str))
