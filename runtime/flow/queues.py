"""Named queues: ``wfkit.Queue`` declarations and the admission of their runs.

``start(wf, ..., queue="emails", key=customer_id, priority=1)`` records the run
with its queue, key and priority (``run_created``) and writes no message: the run
waits, ``pending``. Workers that declare the queue (``Queue("emails", ...)`` in
code they load) *admit* its waiting runs: admission writes the run's
``run_started`` (carrying the admitting worker's id) together with its first
workflow message, in one transaction. A run in a named queue that was not
admitted cannot start (the world refuses a plain ``run_started``).

**What "running" means.** As in DBOS: a run counts against its queue's limits
from its admission until it ends (completed, failed or cancelled), whatever it
does meanwhile: running steps, sleeping, waiting on a hook. So ``concurrency=3``
is "at most 3 runs of this queue between admission and end", across every worker.

The limits, all optional:

- ``concurrency``: runs of the queue running at once, over all workers;
- ``worker_concurrency``: runs of the queue one worker admitted that are still
  running. A run is not tied to the worker that admitted it (its later messages go
  to any worker that serves its deployment), so this bounds what each worker
  takes on from the queue, not where the runs' steps execute;
- ``rate_limit=(n, period)``: at most ``n`` admissions per sliding ``period``;
- ``per_key_concurrency``: running runs with the same ``key``;
- runs are admitted by ``priority`` (lower first), then in start order.

**One admitter at a time.** Admission reads counts and then writes, so two
workers admitting at once could exceed a limit. Each queue has one *admission
token*: a message in the world's own durable queue (``__wkq_admit_<name>``) that a
worker must hold (lease) to admit; it hands it back (``nack``) when done. The
queue's lease gives mutual exclusion on every world (SQLite's write lock,
Postgres ``SKIP LOCKED``, the memory world's lock) and a worker that dies holding
the token loses it when the lease lapses. Alternatives rejected: an advisory lock
(Postgres only); slot rows with a unique index (no rate limits or priorities);
counting and writing in one world transaction (a new world capability per
database, for what the queue already gives).
"""

from __future__ import annotations

import difflib
import logging
import threading
import weakref
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from wfkit.runtime.engine.messages import workflow_message
from wfkit.worlds.base import EntityConflictError, EventRequest, Run, World, WorldError, utc_now

__all__ = [
    "Queue",
    "admit_holding_token",
    "admit_queued_runs",
    "announce",
    "declared_queues",
    "has_waiting_runs",
    "warn_undeclared",
]

log = logging.getLogger("wfkit.flow")

ADMISSION_QUEUE_PREFIX = "__wkq_admit_"
"""Queue names of the admission tokens (no worker receives them as work)."""
_TOKEN_LEASE_SECONDS = 10.0
_CANDIDATES = 1000
"""How many waiting runs one admission pass looks at (in admission order)."""

_declared: dict[str, Queue] = {}
_declared_lock = threading.Lock()


@dataclass(frozen=True)
class Queue:
    """A named queue with limits, declared at module level in code workers load.

    ``Queue("emails", concurrency=3, worker_concurrency=1,
    rate_limit=(10, timedelta(seconds=1)), per_key_concurrency=1)``; then
    ``start(send, ..., queue=emails, key=customer_id)``. Declaring the same name
    again with the same limits returns an equal queue (modules are loaded more
    than once in a worker); with other limits it is an error.

    Args:
        name: the queue's name.
        concurrency: runs running at once over all workers (None: no limit).
        worker_concurrency: runs one worker admitted still running (None: no limit).
        rate_limit: ``(n, period)``: at most ``n`` admissions per ``period``
            (a ``timedelta`` or seconds).
        per_key_concurrency: running runs with the same ``key`` (None: no limit).

    Raises:
        ValueError: a limit below 1, a bad rate limit, or the name declared with
            other limits.
    """

    name: str
    concurrency: int | None = None
    worker_concurrency: int | None = None
    rate_limit: tuple[int, timedelta | float] | None = None
    per_key_concurrency: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Queue name {self.name!r}: expected a non-empty string")
        for field in ("concurrency", "worker_concurrency", "per_key_concurrency"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"Queue {self.name!r}: {field}={value!r} must be an int >= 1")
        if self.rate_limit is not None:
            count, period = self.rate_limit
            seconds = period.total_seconds() if isinstance(period, timedelta) else period
            if not isinstance(count, int) or count < 1 or not seconds > 0:
                raise ValueError(
                    f"Queue {self.name!r}: rate_limit={self.rate_limit!r} must be "
                    "(n >= 1, a positive period)"
                )
        with _declared_lock:
            existing = _declared.get(self.name)
            if existing is not None and existing != self:
                raise ValueError(
                    f"Queue {self.name!r} is declared twice with different limits: "
                    f"{existing!r} and {self!r}"
                )
            _declared[self.name] = self

    @property
    def rate_period(self) -> timedelta | None:
        """The rate limit's period (None without a rate limit)."""
        if self.rate_limit is None:
            return None
        period = self.rate_limit[1]
        return period if isinstance(period, timedelta) else timedelta(seconds=period)


def declared_queues() -> list[Queue]:
    """The queues this process declared, by name."""
    with _declared_lock:
        return [_declared[name] for name in sorted(_declared)]


def _forget_queue(name: str) -> None:
    """Drop a declaration (tests that declare the same name with other limits)."""
    with _declared_lock:
        _declared.pop(name, None)


def announce(world: World, queue: Queue) -> None:
    """Make the world know that a worker declares ``queue``: its admission token
    exists from then on (tokens are handed back, never acked), which is what
    ``warn_undeclared`` looks for. Idempotent: the token's key dedupes."""
    token_queue = ADMISSION_QUEUE_PREFIX + queue.name
    world.queue.enqueue(token_queue, {}, idempotency_key=token_queue)


_seen_declared: weakref.WeakKeyDictionary[World, set[str]] = weakref.WeakKeyDictionary()
"""Queue names each world was found to know: a token once there stays (no read again)."""


def warn_undeclared(world: World, runs: Iterable[tuple[str, str]]) -> None:
    """Warn about runs started in a queue no worker has declared: they would wait,
    ``pending``, in silence until one does (a typo in ``queue=`` never ends).

    A queue counts as declared when this process declares it or a worker has
    announced it to the world (``announce``). Only a warning: starting runs before
    the first worker that declares their queue is deployed is legitimate.

    Args:
        world: the world the runs were written to.
        runs: ``(run_id, queue name)`` of the runs just started in named queues.
    """
    by_queue: dict[str, list[str]] = {}
    for run_id, name in runs:
        by_queue.setdefault(name, []).append(run_id)
    try:
        seen = _seen_declared.setdefault(world, set())
    except TypeError:  # a world object that cannot be weakly referenced: ask each time
        seen = set()
    here = {queue.name for queue in declared_queues()}
    unknown = sorted(set(by_queue) - seen - here)
    if not unknown:
        return
    announced = {
        name.removeprefix(ADMISSION_QUEUE_PREFIX)
        for name in world.queue.queue_names(ADMISSION_QUEUE_PREFIX)
    }
    seen |= announced
    known = sorted(announced | here)
    for name in unknown:
        if name in known:
            continue
        run_ids = by_queue[name]
        runs_wait = f"run {run_ids[0]} waits" if len(run_ids) == 1 else f"{len(run_ids)} runs wait"
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        log.warning(
            f"{runs_wait}, pending, in queue {name!r}, which no worker has declared yet "
            f"(declared: {', '.join(known) or 'none'}); a worker that loads "
            f"wfkit.Queue({name!r}, ...) admits {'it' if len(run_ids) == 1 else 'them'}.{hint}"
        )


def admit_queued_runs(world: World, queue: Queue, worker_id: str) -> list[str]:
    """One admission pass over ``queue``, holding its admission token.

    Returns:
        The ids of the runs admitted (none when another worker holds the token).
    """
    if not has_waiting_runs(world, queue):
        return []  # nothing waits: leave the token alone
    return admit_holding_token(world, queue, worker_id)


def has_waiting_runs(world: World, queue: Queue) -> bool:
    """Whether any run waits in ``queue`` (one indexed read)."""
    return bool(world.runs.list_queued(queue.name, status="pending", limit=1))


def admit_holding_token(world: World, queue: Queue, worker_id: str) -> list[str]:
    """``admit_queued_runs`` without first looking for waiting runs."""
    token_queue = ADMISSION_QUEUE_PREFIX + queue.name
    token = None
    for message in world.queue.receive(
        [token_queue], lease_seconds=_TOKEN_LEASE_SECONDS, max_messages=2
    ):
        if message.queue == token_queue:
            token = message
        else:  # the token of a queue whose name starts with this one's
            world.queue.nack(message.message_id, attempt=message.attempt)
    if token is None:
        # Make sure the token exists: its key dedupes against a copy a worker holds.
        world.queue.enqueue(token_queue, {}, idempotency_key=token_queue)
        return []
    try:
        return _admit(world, queue, worker_id)
    finally:
        try:
            world.queue.nack(token.message_id, attempt=token.attempt)
        except WorldError as exc:  # the lease lapses and the token comes back anyway
            log.warning("handing back the admission token of queue %s failed: %s", queue.name, exc)


def _admit(world: World, queue: Queue, worker_id: str) -> list[str]:
    """Admit what the limits allow (the token is held)."""
    running = world.runs.list_queued(queue.name, status="running", limit=1_000_000)
    budget = _CANDIDATES
    if queue.concurrency is not None:
        budget = min(budget, queue.concurrency - len(running))
    if queue.worker_concurrency is not None:
        mine = sum(1 for run in running if run.admitted_by == worker_id)
        budget = min(budget, queue.worker_concurrency - mine)
    period = queue.rate_period
    if queue.rate_limit is not None and period is not None:
        recent = world.runs.list_queued(
            queue.name, started_after=utc_now() - period, limit=queue.rate_limit[0]
        )
        budget = min(budget, queue.rate_limit[0] - len(recent))
    if budget <= 0:
        return []
    per_key = Counter(run.queue_key for run in running if run.queue_key is not None)
    admitted: list[str] = []
    for run in world.runs.list_queued(queue.name, status="pending", limit=_CANDIDATES):
        if len(admitted) >= budget:
            break
        if run.queue_key is not None and queue.per_key_concurrency is not None:
            if per_key[run.queue_key] >= queue.per_key_concurrency:
                continue
        if _admit_run(world, run, worker_id):
            admitted.append(run.run_id)
            if run.queue_key is not None:
                per_key[run.queue_key] += 1
    return admitted


def _admit_run(world: World, run: Run, worker_id: str) -> bool:
    """Start one waiting run: its ``run_started`` and first message in one transaction."""
    try:
        world.events.create_batch(
            run.run_id,
            [EventRequest(event_type="run_started", data={"admitted_by": worker_id})],
            messages=[
                workflow_message(run.workflow_name, run.run_id, deployment_id=run.deployment_id)
            ],
        )
    except EntityConflictError:  # cancelled (or failed by its deadline) meanwhile
        return False
    return True
