"""Group commit across runs: several runs' event batches in one transaction.

A worker driving many runs at once has, at any moment, a handful of runs whose
next writes are ready together (each a ``create_batch``: the step outcome it fed
provisionally plus the workflow's next events). ``Events.create_batches`` writes
them in one transaction, so the database's commit (an fsync, a round trip) is paid
once per group instead of once per run.

Each ``BatchWrite`` keeps ``create_batch``'s meaning on its own: all of its events
or none, its ``expected_last_event_id`` checked, its messages enqueued with it. A
write that is refused gets its error in its slot of the answer and writes nothing;
the others are unaffected. Every write answered with results is durable when
``create_batches`` returns.

Optional capability: a world whose writers queue for a lock shared with other
processes (local: SQLite's one writer) may also offer
``Events.prepare_batches(writes) -> PreparedBatches``: the group planned without
the lock, written by ``PreparedBatches.write(wait=...)``. With ``wait=False`` the
write answers None, having written nothing, when another process holds the lock,
so a caller on an event loop can run other work first instead of blocking on it
(``wfkit.runtime.engine.group_commit``). ``prepare_batches(writes).write()`` means
``create_batches(writes)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from wfkit.worlds.base.errors import WorldError
from wfkit.worlds.base.records import EventRequest, EventResult, QueueMessageRequest

if TYPE_CHECKING:
    from wfkit.worlds.base.protocols import Events

__all__ = ["BatchOutcome", "BatchWrite", "PreparedBatches", "create_batches_one_by_one"]


@dataclass(frozen=True, slots=True)
class BatchWrite:
    """One run's ``create_batch`` call, as an item of ``Events.create_batches``."""

    run_id: str
    requests: Sequence[EventRequest]
    messages: Sequence[QueueMessageRequest] = field(default=())
    expected_last_event_id: str | None = None


#: What ``create_batches`` answers for one write: its results, or why it was refused.
BatchOutcome = list[EventResult] | WorldError


class PreparedBatches(Protocol):
    """A group of writes planned without the write lock (``prepare_batches``)."""

    def write(self, *, wait: bool = True) -> list[BatchOutcome] | None:
        """Write the group, answering as ``Events.create_batches`` does; once only.

        Args:
            wait: wait for the write lock when another process holds it; False:
                answer None at once instead, having written nothing (the group may
                then be written later, waiting).

        Raises:
            WorldError: the whole call failed (none of the writes is known written).
        """
        ...


def create_batches_one_by_one(events: Events, writes: Sequence[BatchWrite]) -> list[BatchOutcome]:
    """``create_batches`` as one ``create_batch`` transaction per write: the meaning
    without the saving, for worlds (and wrappers) with nothing better."""
    outcomes: list[BatchOutcome] = []
    for write in writes:
        try:
            outcomes.append(
                events.create_batch(
                    write.run_id,
                    write.requests,
                    messages=write.messages,
                    expected_last_event_id=write.expected_last_event_id,
                )
            )
        except WorldError as exc:
            outcomes.append(exc)
    return outcomes
