"""The local world's durable queue: a table of messages with visibility times.

Receiving first checks, without the write lock, whether anything is visible,
so idle workers polling the queue never stall the writers; only then does it
claim messages in a ``BEGIN IMMEDIATE`` transaction (push ``visible_at`` to the
lease end, ``attempt + 1``), which makes a message go to exactly one worker
across threads and processes. Waiting receivers poll (other processes cannot
signal us) but wake at once for messages enqueued in this process.

Acks ride on other write transactions. A worker acks every message it handled,
one call per message, on its event loop; as a transaction each, they were most
of a worker's write transactions (a commit and a turn of the write lock each,
the loop blocked while another process held it, and a burst of them kept the
lock from a waiting process). ``ack`` instead records the message; the next write
transaction of this world, in any thread (a group commit, a claim, an enqueue),
deletes every recorded one right after its BEGIN (``write_pending_acks``, the
connections' ``on_write_begin``), and the checkpointer's thread writes those no
transaction took within its round (0.25 s). Reads of this queue by this world
(``live_run_ids``, ``next_visible_at``, ``delete_messages``) write them first, so
this process never sees an acked message. What an ack promises is unchanged: a
message acked and then lost with its process (SIGKILL before the delete
committed) is redelivered when its lease ends, as one whose handler was killed
just before ``ack`` always was; delivery is at least once, and a leased message
is invisible to every receiver until then.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Engine,
    and_,
    bindparam,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wfkit.worlds.base import (
    QueueMessage,
    QueueMessageRequest,
    current_clock,
    encode_json,
    new_id,
    utc_now,
)
from wfkit.worlds.local.db import (
    PreparedSql,
    ThreadConnections,
    fetch_all,
    translated_errors,
    write_transaction,
)
from wfkit.worlds.local.sql import CODECS, TABLES

queue_table = TABLES.queue_messages
_Q = queue_table.c
POLL_SECONDS = 0.05

_INSERT_MESSAGE = PreparedSql(
    sqlite_insert(queue_table).on_conflict_do_nothing(index_elements=["idempotency_key"]),
    [key for key in queue_table.c.keys() if key != "seq"],
)
_SELECT_BY_KEY = PreparedSql(select(_Q.message_id).where(_Q.idempotency_key == bindparam("key")))
_LEASE = PreparedSql(
    update(queue_table)
    .where(
        _Q.seq.in_(select(literal_column("value")).select_from(func.json_each(bindparam("seqs"))))
    )
    .values(visible_at=bindparam("until"), attempt=_Q.attempt + 1)
)
_DELETE = PreparedSql(delete(queue_table).where(_Q.message_id == bindparam("message_id")))
_DELETE_LEASED = PreparedSql(
    delete(queue_table).where(
        _Q.message_id == bindparam("message_id"), _Q.attempt == bindparam("attempt")
    )
)
_SET_VISIBLE = PreparedSql(
    update(queue_table)
    .where(_Q.message_id == bindparam("message_id"))
    .values(visible_at=bindparam("visible_at"))
)
_SET_VISIBLE_LEASED = PreparedSql(
    update(queue_table)
    .where(_Q.message_id == bindparam("message_id"), _Q.attempt == bindparam("attempt"))
    .values(visible_at=bindparam("visible_at"))
)
_DELETE_RUN = PreparedSql(delete(queue_table).where(_Q.run_id == bindparam("run_id")))


def _visible(prefixes: Sequence[str]) -> Any:
    # substr, not LIKE: queue names are full of "_", LIKE's wildcard.
    by_prefix = or_(*(func.substr(_Q.queue, 1, len(p)) == literal(p) for p in prefixes))
    return and_(_Q.visible_at <= bindparam("now"), by_prefix)


@functools.lru_cache(maxsize=256)
def _claim_statements(prefixes: tuple[str, ...], limit: int) -> tuple[PreparedSql, PreparedSql]:
    """The lock-free probe and the claiming SELECT of a receive, prepared."""
    visible = _visible(prefixes)
    probe = PreparedSql(select(_Q.seq).where(visible).limit(1))
    claim = PreparedSql(
        select(queue_table).where(visible).order_by(_Q.visible_at, _Q.seq).limit(limit)
    )
    return probe, claim


def enqueue_in(cursor: sqlite3.Cursor, requests: Sequence[QueueMessageRequest]) -> list[str]:
    """Insert messages inside the caller's write transaction; returns their ids
    (an existing message's id when its idempotency key is taken)."""
    ids: list[str] = []
    now = current_clock().timestamp()
    created_at = utc_now().isoformat()
    for request in requests:
        payload, payload_json = encode_json(request.payload)
        run_id = payload.get("run_id")
        message_id = new_id("msg")
        cursor.execute(
            _INSERT_MESSAGE.sql,
            _INSERT_MESSAGE.args(
                {
                    "message_id": message_id,
                    "queue": request.queue,
                    "payload": payload_json,
                    "attempt": 0,
                    "idempotency_key": request.idempotency_key,
                    "run_id": run_id if isinstance(run_id, str) else None,
                    "created_at": created_at,
                    "visible_at": now + max(0.0, request.delay_seconds),
                }
            ),
        )
        if cursor.rowcount == 0:
            row = cursor.execute(
                _SELECT_BY_KEY.sql, _SELECT_BY_KEY.args({"key": request.idempotency_key})
            ).fetchone()
            message_id = row[0]
        ids.append(message_id)
    return ids


class LocalQueue:
    """``world.queue`` of the local world."""

    def __init__(
        self, engine: Engine, connections: ThreadConnections, changed: threading.Condition
    ) -> None:
        self._engine = engine
        self._connections = connections
        self._changed = changed
        self._acks: list[tuple[str, int | None]] = []
        """Messages acked and not yet deleted: (message id, lease attempt or None)."""
        self._acks_lock = threading.Lock()
        self._pid = os.getpid()

    def write_pending_acks(self, cursor: sqlite3.Cursor) -> Callable[[], None] | None:
        """Delete the messages acked since the last write transaction, in the
        caller's (right after its BEGIN); returns what puts them back to be
        written by a later transaction should this one be rolled back."""
        if not self._acks:
            return None
        with self._acks_lock:
            if self._pid != os.getpid():  # a forked child: the parent's acks are its own
                self._acks, self._pid = [], os.getpid()
                return None
            acks, self._acks = self._acks, []
        try:
            leased = [(message_id, attempt) for message_id, attempt in acks if attempt is not None]
            if leased:
                cursor.executemany(_DELETE_LEASED.sql, leased)
            plain = [(message_id,) for message_id, attempt in acks if attempt is None]
            if plain:
                cursor.executemany(_DELETE.sql, plain)
        except BaseException:
            self._put_back(acks)
            raise
        return lambda: self._put_back(acks)

    def _put_back(self, acks: list[tuple[str, int | None]]) -> None:
        with self._acks_lock:
            self._acks[:0] = acks

    def flush_acks(self) -> None:
        """Write the recorded acks now, in a transaction of their own (when any)."""
        if self._acks:
            with write_transaction(self._connections):
                pass  # the transaction's BEGIN writes them (write_pending_acks)

    def notify(self) -> None:
        """Wake receivers of this process (something was enqueued or nacked)."""
        with self._changed:
            self._changed.notify_all()

    def enqueue(
        self,
        queue: str,
        payload: Mapping[str, Any],
        *,
        delay_seconds: float = 0.0,
        idempotency_key: str | None = None,
    ) -> str:
        """Add a message; a key held by an unacked message returns that message's id."""
        request = QueueMessageRequest(
            queue=queue,
            payload=dict(payload),
            delay_seconds=delay_seconds,
            idempotency_key=idempotency_key,
        )
        with write_transaction(self._connections) as cursor:
            (message_id,) = enqueue_in(cursor, [request])
        self.notify()
        return message_id

    def _claim(
        self, prefixes: Sequence[str], lease_seconds: float, limit: int
    ) -> list[QueueMessage]:
        probe, claim = _claim_statements(tuple(prefixes), limit)
        # Look before taking the write lock, so idle pollers never stall writers.
        if not fetch_all(self._connections, probe, now=current_clock().timestamp()):
            return []
        with write_transaction(self._connections) as cursor:
            now = current_clock().timestamp()
            rows = [dict(row) for row in cursor.execute(claim.sql, claim.args({"now": now}))]
            if not rows:
                return []
            until = now + lease_seconds
            seqs = json.dumps([row["seq"] for row in rows])
            cursor.execute(_LEASE.sql, _LEASE.args({"seqs": seqs, "until": until}))
        return [
            CODECS.message.from_row({**row, "visible_at": until, "attempt": row["attempt"] + 1})
            for row in rows
        ]

    def receive(
        self,
        prefixes: Sequence[str],
        *,
        lease_seconds: float,
        max_messages: int = 1,
        wait_seconds: float = 0.0,
    ) -> list[QueueMessage]:
        """Lease visible messages whose queue starts with one of ``prefixes``,
        blocking up to ``wait_seconds`` for one to appear."""
        deadline = time.monotonic() + wait_seconds
        if not prefixes:
            raise ValueError("receive needs at least one queue-name prefix")
        while True:
            messages = self._claim(prefixes, lease_seconds, max_messages)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            with self._changed:
                self._changed.wait(min(remaining, POLL_SECONDS))

    def ack(self, message_id: str, *, attempt: int | None = None) -> None:
        """Delete the message (a no-op when it is gone or, with ``attempt``, re-leased),
        with this world's next write transaction (the module's docstring)."""
        with self._acks_lock:
            if self._pid != os.getpid():
                self._acks, self._pid = [], os.getpid()
            self._acks.append((message_id, attempt))

    def nack(
        self, message_id: str, *, delay_seconds: float = 0.0, attempt: int | None = None
    ) -> None:
        """Make a leased message visible again after ``delay_seconds``."""
        self._set_visible(
            message_id, current_clock().timestamp() + max(0.0, delay_seconds), attempt
        )
        self.notify()

    def extend_lease(
        self, message_id: str, *, lease_seconds: float, attempt: int | None = None
    ) -> None:
        """Keep a leased message invisible for ``lease_seconds`` from now."""
        self._set_visible(message_id, current_clock().timestamp() + lease_seconds, attempt)

    def _set_visible(self, message_id: str, visible_at: float, attempt: int | None) -> None:
        statement = _SET_VISIBLE if attempt is None else _SET_VISIBLE_LEASED
        with write_transaction(self._connections) as cursor:
            cursor.execute(
                statement.sql,
                statement.args(
                    {"message_id": message_id, "visible_at": visible_at, "attempt": attempt}
                ),
            )

    def next_visible_at(self, *, excluding: tuple[str, ...] = ()) -> float | None:
        """When the earliest message not yet acked becomes visible (epoch seconds by
        ``current_clock()``); None when the queue is empty. A leased message counts
        at its lease's end: the testing kit asks only when nothing is leased.
        Messages whose queue starts with a prefix in ``excluding`` are left out."""
        query = select(func.min(_Q.visible_at)).where(
            *(func.substr(_Q.queue, 1, len(p)) != literal(p) for p in excluding)
        )
        self.flush_acks()
        with translated_errors(), self._engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else float(value)

    def live_run_ids(self) -> set[str]:
        """Run ids that have at least one message not yet acked."""
        query = select(_Q.run_id).where(_Q.run_id.is_not(None)).distinct()
        self.flush_acks()
        with translated_errors(), self._engine.connect() as conn:
            return {row[0] for row in conn.execute(query)}

    def queue_names(self, prefix: str) -> set[str]:
        """Names of the queues starting with ``prefix`` that hold a message not yet acked."""
        query = select(_Q.queue).where(func.substr(_Q.queue, 1, len(prefix)) == literal(prefix))
        self.flush_acks()
        with translated_errors(), self._engine.connect() as conn:
            return {row[0] for row in conn.execute(query.distinct())}

    def delete_messages(self, run_id: str) -> int:
        """Drop every message of a run; returns how many."""
        with write_transaction(self._connections) as cursor:
            cursor.execute(_DELETE_RUN.sql, _DELETE_RUN.args({"run_id": run_id}))
            return int(cursor.rowcount)
