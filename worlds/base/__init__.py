"""The World contract: records, events, errors and one Protocol per capability.

A *world* is where wfkit keeps durable state: an append-only event log per run
(whose fold gives the runs/steps/hooks/waits records), a durable queue and
streams. The runtime imports only this package, always as ``wfkit.worlds.base`` (never a
submodule); ``wfkit.worlds.create_world`` is the one function that knows the concrete
worlds.

Modules, one per capability (this ``__init__`` re-exports every public name)::

    errors      the error tree below
    records     Run/Step/Hook/Wait, Event/EventRequest/EventResult, queue and
                stream models; ids, timestamps and JSON encoding
    protocols   one Protocol per capability (Events, Runs, Steps, Hooks, Waits,
                Queue, Streams), combined into World
    lifecycle   RecordLoader, PlannedWrites, plan_events and the transitions
    fold        FoldedState, StateLoader, fold_events, diff_run_records
    clock       Clock, SYSTEM_CLOCK, current_clock, use_clock: where durable time
                is read (a test installs a virtual clock to skip time)

Error tree::

    WorldError(WfkitError)
    ├── EntityConflictError        a refused transition or a duplicate creation; nothing written
    ├── RunNotFoundError
    ├── StepNotFoundError
    ├── HookNotFoundError
    ├── WaitNotFoundError
    ├── ScheduleNotFoundError
    ├── SchemaVersionError         the store's version is newer than this wfkit, or invalid
    ├── InvalidEventError          a malformed event request (also a ValueError)
    ├── CorruptedLogError          a stored log the lifecycle rules cannot fold
    └── WorldUnavailableError      the database cannot be reached now (retry later)

API sketch (every method is synchronous; the runtime decides what runs off-loop)::

    world.events.create(run_id | None, EventRequest) -> EventResult
    world.events.create_batch(run_id, [EventRequest, ...], messages=[...], expected_last_event_id=None) -> [EventResult, ...]
    world.events.list(run_id, after_event_id=None, limit=None) -> [Event, ...]
    world.runs.get(run_id) / list(status=None, workflow_name=None, limit=100)
    world.steps.get(run_id, step_id) / list(run_id)
    world.hooks.get(hook_id) / get_by_token(token) / list(run_id=None)
    world.waits.get(run_id, wait_id) / list(run_id)
    world.queue.enqueue(queue, payload, delay=0, idempotency_key=None) -> message_id
    world.queue.receive(prefixes, lease_seconds, max_messages=1, wait_seconds=0) -> [QueueMessage, ...]
    world.queue.ack(message_id, attempt=None) / nack(..., delay_seconds=0, attempt=None) / extend_lease(..., lease_seconds, attempt=None)
    world.queue.live_run_ids() / delete_messages(run_id)
    world.streams.append(run_id, name, data) -> index / close(run_id, name)
    world.streams.read(run_id, name, start_index=0, limit=None) -> StreamPage
    world.streams.wait(run_id, name, after_index, timeout) -> None
    world.streams.list(run_id) -> [name, ...]

Shared lifecycle rules (``lifecycle`` and ``fold``; every world uses them, so
the worlds cannot disagree on what a transition means)::

    plan_events(loader, run_id, requests, now=None, expected_last_event_id=None) -> PlannedWrites
        check requests against the lifecycle table, reading current records
        through a RecordLoader inside the world's transaction; the world then
        writes PlannedWrites (events, new/changed records, released runs)
    fold_events(events) -> FoldedState          the records a log gives
    diff_run_records(world, run_id) -> [str]    fold vs materialized records (wfkit verify)
    StateLoader(FoldedState)                    an in-memory RecordLoader (fold, MemoryWorld)
    create_batches_one_by_one(events, writes)  Events.create_batches without the group commit
    PreparedBatches                             a group planned before the write lock (optional
                                                Events.prepare_batches, batches.py)
    run_id_for_create(run_id, request) -> str   the run of one Events.create (wrun_… for a new run)
    new_id("evnt") / utc_now() / parse_timestamp(s) / encode_json(data)
"""

from __future__ import annotations

import inspect as _inspect

from wfkit.worlds.base.batches import (
    BatchOutcome,
    BatchWrite,
    PreparedBatches,
    create_batches_one_by_one,
)
from wfkit.worlds.base.clock import SYSTEM_CLOCK, Clock, SystemClock, current_clock, use_clock
from wfkit.worlds.base.errors import (
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
    WorldUnavailableError,
)
from wfkit.worlds.base.fold import FoldedState, StateLoader, diff_run_records, fold_events
from wfkit.worlds.base.lifecycle import PlannedWrites, RecordLoader, plan_events, run_id_for_create
from wfkit.worlds.base.protocols import (
    Events,
    Hooks,
    Queue,
    Runs,
    Schedules,
    Steps,
    Streams,
    Waits,
    World,
)
from wfkit.worlds.base.records import (
    RUN_TERMINAL,
    SPEC_VERSION,
    STEP_TERMINAL,
    Event,
    EventRequest,
    EventResult,
    EventType,
    Hook,
    HookStatus,
    MissedTicks,
    MonotonicUlids,
    QueueMessage,
    QueueMessageRequest,
    Run,
    RunStatus,
    Schedule,
    ScheduleStatus,
    Step,
    StepStatus,
    StreamPage,
    Wait,
    WaitStatus,
    encode_json,
    new_id,
    normalize_json,
    parse_timestamp,
    stream_start_index,
    trusted_constructor,
    utc_now,
)

__all__ = [
    "RUN_TERMINAL",
    "SPEC_VERSION",
    "STEP_TERMINAL",
    "SYSTEM_CLOCK",
    "BatchOutcome",
    "BatchWrite",
    "Clock",
    "CorruptedLogError",
    "EntityConflictError",
    "Event",
    "EventRequest",
    "EventResult",
    "EventType",
    "Events",
    "FoldedState",
    "Hook",
    "HookNotFoundError",
    "HookStatus",
    "Hooks",
    "InvalidEventError",
    "MissedTicks",
    "MonotonicUlids",
    "PlannedWrites",
    "PreparedBatches",
    "Queue",
    "QueueMessage",
    "QueueMessageRequest",
    "RecordLoader",
    "Run",
    "RunNotFoundError",
    "RunStatus",
    "Runs",
    "Schedule",
    "ScheduleNotFoundError",
    "ScheduleStatus",
    "Schedules",
    "SchemaVersionError",
    "StateLoader",
    "Step",
    "StepNotFoundError",
    "StepStatus",
    "Steps",
    "StreamPage",
    "Streams",
    "SystemClock",
    "Wait",
    "WaitNotFoundError",
    "WaitStatus",
    "Waits",
    "WfkitError",
    "World",
    "WorldError",
    "WorldUnavailableError",
    "create_batches_one_by_one",
    "current_clock",
    "diff_run_records",
    "encode_json",
    "fold_events",
    "new_id",
    "normalize_json",
    "parse_timestamp",
    "plan_events",
    "run_id_for_create",
    "stream_start_index",
    "trusted_constructor",
    "use_clock",
    "utc_now",
]

# Classes and functions keep the module name they had before the split: the
# serializer stores an exception's type as ``module.QualName`` (ErrorInfo) and a
# class as ``module:QualName``, so event logs keep saying ``wfkit.worlds.base.…``.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) or _inspect.isfunction(_value):
        _value.__module__ = __name__
del _name, _value
