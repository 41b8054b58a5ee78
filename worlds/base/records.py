"""The records a world stores, the event and queue models, and the helpers every
world uses to make ids, read timestamps and encode event data."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticUndefined

from wfkit.worlds.base.clock import current_clock
from wfkit.worlds.base.errors import InvalidEventError
from wfkit.worlds.base.json_text import dump_json, load_json

SPEC_VERSION = 2

RunStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
StepStatus = Literal["pending", "running", "completed", "failed"]
HookStatus = Literal["active", "disposed", "conflicted"]
WaitStatus = Literal["waiting", "completed"]

EventType = Literal[
    "run_created",
    "run_started",
    "run_completed",
    "run_failed",
    "run_cancelled",
    "run_retried",
    "patch_marked",
    "step_created",
    "step_started",
    "step_retrying",
    "step_completed",
    "step_failed",
    "hook_created",
    "hook_conflict",
    "hook_received",
    "hook_disposed",
    "wait_created",
    "wait_completed",
]

RUN_TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
STEP_TERMINAL: frozenset[str] = frozenset({"completed", "failed"})


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Run(_Record):
    run_id: str
    workflow_name: str
    status: RunStatus
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    deployment_id: str = ""
    execution_context: dict[str, Any] = Field(default_factory=dict)
    spec_version: int = SPEC_VERSION
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    idempotency_key: str | None = None
    deadline_at: datetime | None = None
    queue_name: str | None = None
    queue_key: str | None = None
    queue_priority: int | None = None
    admitted_by: str | None = None


ScheduleStatus = Literal["active", "paused"]
MissedTicks = Literal["skip", "catch_up"]


class Schedule(_Record):
    """A cron schedule (world-level configuration, not an event log): each tick
    starts one run of ``workflow_name`` with ``input``."""

    schedule_id: str
    workflow_name: str
    cron: str
    input: Any = None
    missed: MissedTicks = "skip"
    status: ScheduleStatus = "active"
    last_tick_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class Step(_Record):
    run_id: str
    step_id: str
    step_name: str
    status: StepStatus
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    attempt: int = 0
    retry_after: datetime | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None


class Hook(_Record):
    run_id: str
    hook_id: str
    token: str
    status: HookStatus
    metadata: Any = None
    is_webhook: bool = False
    respond_with: Any = None
    created_at: datetime
    updated_at: datetime


class Wait(_Record):
    run_id: str
    wait_id: str
    status: WaitStatus
    resume_at: datetime
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None


class Event(_Record):
    event_id: str
    run_id: str
    event_type: EventType
    correlation_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    spec_version: int = SPEC_VERSION


class EventRequest(_Record):
    event_type: EventType
    correlation_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    """When the caller already showed this event to a live replay, the time it used;
    the world stores it instead of its own clock (None: the world's now)."""


class EventResult(_Record):
    event: Event
    run: Run | None = None
    step: Step | None = None
    hook: Hook | None = None
    wait: Wait | None = None


class QueueMessageRequest(_Record):
    queue: str
    payload: dict[str, Any]
    delay_seconds: float = 0.0
    idempotency_key: str | None = None


class QueueMessage(_Record):
    message_id: str
    queue: str
    payload: dict[str, Any]
    attempt: int
    idempotency_key: str | None = None
    run_id: str | None = None
    created_at: datetime
    visible_at: datetime


R = TypeVar("R", bound=_Record)

_new_object = object.__new__
_set_attribute = object.__setattr__


def trusted_constructor(model: type[R]) -> Callable[..., R]:
    """A constructor of ``model`` records that skips validation, for values the
    caller has just checked itself (the lifecycle rules build the records of the
    write path from fields whose types they know).

    ``make(**fields)`` gives what ``model(**fields)`` gives for valid ``fields``:
    an equal record with the same ``__dict__`` (fields in declaration order,
    defaults filled, a ``default_factory`` called) and the same
    ``model_fields_set``. The caller answers for the types; an unknown or missing
    field is a ``TypeError``, as it would be a validation error.
    """
    names: list[str] = []
    scope: dict[str, Any] = {}
    items: list[str] = []
    for name, info in model.model_fields.items():
        if not name.isidentifier():
            raise ValueError(f"field name {name!r} is not an identifier")
        names.append(name)
        if info.default_factory is not None:
            scope[f"factory_{name}"] = info.default_factory
            items.append(f"{name!r}: fields[{name!r}] if {name!r} in fields else factory_{name}()")
        elif info.default is PydanticUndefined:
            items.append(f"{name!r}: fields[{name!r}]")
        else:
            default = info.default
            if not isinstance(default, str | int | float | bool | type(None)):
                raise TypeError(f"{model.__name__}.{name}: a mutable default needs a copy")
            scope[f"default_{name}"] = default
            items.append(f"{name!r}: fields.get({name!r}, default_{name})")
    scope.update(model=model, known=frozenset(names), new=_new_object, set_attribute=_set_attribute)
    source = (
        "def make(**fields):\n"
        "    if not known.issuperset(fields):\n"
        "        raise TypeError(f'unknown fields {sorted(set(fields) - known)}')\n"
        f"    values = {{{', '.join(items)}}}\n"
        "    record = new(model)\n"
        "    set_attribute(record, '__dict__', values)\n"
        "    set_attribute(record, '__pydantic_fields_set__', set(fields))\n"
        "    set_attribute(record, '__pydantic_extra__', None)\n"
        "    set_attribute(record, '__pydantic_private__', None)\n"
        "    return record\n"
    )
    exec(compile(source, f"<wfkit trusted {model.__name__}>", "exec"), scope)
    make: Callable[..., R] = scope["make"]
    return make


def _copy_record(record: R, update: dict[str, Any]) -> R:
    """``record.model_copy(update=update)`` without pydantic's Python frames (no
    validation, as ``model_copy`` does none): the same ``__dict__``, fields set,
    extra and private values (a record with extra or private values takes
    ``model_copy`` itself)."""
    if record.__pydantic_extra__ is not None or record.__pydantic_private__ is not None:
        return record.model_copy(update=update)
    copied = _new_object(type(record))
    values = record.__dict__.copy()
    values.update(update)
    fields_set = record.__pydantic_fields_set__.copy()
    fields_set.update(update)
    _set_attribute(copied, "__dict__", values)
    _set_attribute(copied, "__pydantic_fields_set__", fields_set)
    _set_attribute(copied, "__pydantic_extra__", None)
    _set_attribute(copied, "__pydantic_private__", None)
    return copied


copy_record: Callable[[R, dict[str, Any]], R] = _copy_record
"""``record.model_copy(update=update)`` for the records of this module, faster."""


class StreamPage(_Record):
    chunks: list[bytes]
    next_index: int
    closed: bool


def stream_start_index(start_index: int, length: int) -> int:
    """Where ``Streams.read(start_index=...)`` starts in a stream of ``length`` chunks:
    a negative index counts from the end (``-2``: the last two chunks; past the start
    clamps to 0), as the DevKit's ``getReadable({startIndex})`` does."""
    if start_index >= 0:
        return start_index
    return max(0, length + start_index)


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# 130 bits (2 zero + 48 time + 80 random) as 13 groups of 10 bits, two characters
# each: 5 groups of time, then 8 of randomness.
_CROCKFORD_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_RANDOM_BITS = 80
_RANDOM_MASK = (1 << _RANDOM_BITS) - 1
# Ids are unique, not secret: a seeded PRNG avoids a getrandom() syscall per id.
_RANDOM = random.Random(secrets.randbits(128))


def _time_text(ms: int) -> str:
    """The ten characters of a 48-bit millisecond timestamp."""
    p = _CROCKFORD_PAIRS
    return (
        p[ms >> 40]
        + p[(ms >> 30) & 1023]
        + p[(ms >> 20) & 1023]
        + p[(ms >> 10) & 1023]
        + p[ms & 1023]
    )


def _random_text(rand: int) -> str:
    """The sixteen characters of an 80-bit random part (unrolled: once per id)."""
    p = _CROCKFORD_PAIRS
    return (
        p[rand >> 70]
        + p[(rand >> 60) & 1023]
        + p[(rand >> 50) & 1023]
        + p[(rand >> 40) & 1023]
        + p[(rand >> 30) & 1023]
        + p[(rand >> 20) & 1023]
        + p[(rand >> 10) & 1023]
        + p[rand & 1023]
    )


class MonotonicUlids:
    """A ULID factory whose output sorts in creation order within one process.

    Two ids made in the same millisecond share the timestamp and increment the
    random part, so string order equals creation order (the ULID spec's
    monotonic mode). The timestamp's ten characters are encoded once per
    millisecond: a worker makes several ids in each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0
        self._time_text = (-1, "")  # (millisecond, its encoding), replaced as a whole

    def next(self) -> str:
        """Return a new 26-character Crockford base32 ULID."""
        now_ms = time.time_ns() // 1_000_000
        with self._lock:
            if now_ms <= self._last_ms:
                now_ms = self._last_ms
                rand = self._last_random + 1
                if rand > _RANDOM_MASK:
                    now_ms += 1
                    rand = _RANDOM.getrandbits(_RANDOM_BITS - 1)
            else:
                # One bit of headroom so increments within a millisecond never overflow.
                rand = _RANDOM.getrandbits(_RANDOM_BITS - 1)
            self._last_ms = now_ms
            self._last_random = rand
        cached_ms, time_text = self._time_text
        if cached_ms != now_ms:
            time_text = _time_text(now_ms)
            self._time_text = (now_ms, time_text)
        return time_text + _random_text(rand)


_ULIDS = MonotonicUlids()


def new_id(prefix: str) -> str:
    """Return ``<prefix>_<ULID>`` (``new_id("evnt")`` → ``evnt_01J…``), monotonic per process."""
    return f"{prefix}_{_ULIDS.next()}"


def utc_now() -> datetime:
    """The current time as an aware UTC datetime, read from ``current_clock()`` (the
    system clock unless a test installed a virtual one)."""
    return current_clock().now()


def parse_timestamp(value: Any) -> datetime:
    """Parse an ISO 8601 string (or pass through a datetime) into an aware UTC datetime.

    Raises:
        InvalidEventError: ``value`` is neither.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(
                value.replace("Z", "+00:00") if value.endswith("Z") else value
            )
        except ValueError as exc:
            raise InvalidEventError(f"not an ISO 8601 timestamp: {value!r}") from exc
    else:
        raise InvalidEventError(f"expected an ISO 8601 timestamp, got {type(value).__name__}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def encode_json(data: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Encode ``data`` as a durable world stores it: the compact JSON text
    (ASCII-only, so NUL is escaped) and the value read back from it.

    Raises:
        InvalidEventError: ``data`` is not JSON-serializable.
    """
    if not data:
        return {}, "{}"
    try:
        text = dump_json(data)
        result: dict[str, Any] = load_json(text)
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(f"event data is not JSON-serializable: {exc}") from exc
    return result, text


def normalize_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """Round-trip ``data`` through JSON, as a durable world stores it.

    Raises:
        InvalidEventError: ``data`` is not JSON-serializable.
    """
    return encode_json(data)[0]
