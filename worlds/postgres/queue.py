"""``world.queue`` of the Postgres world: a durable queue in one table.

* **receive** leases with ``SELECT … FOR UPDATE SKIP LOCKED`` (visible messages
  whose queue matches a prefix, oldest first) and pushes ``visible_at`` forward
  by the lease, ``attempt + 1``, in the same statement; concurrent workers on
  any machine never get the same message while its lease holds.
* An expired lease makes the message visible again (redelivery); ``ack``
  deletes it, ``nack`` makes it visible after a delay, ``extend_lease`` keeps it.
* Idempotency keys: a partial UNIQUE index on ``idempotency_key`` and
  ``INSERT … ON CONFLICT DO NOTHING``; a key held by a message not yet acked
  makes ``enqueue`` a no-op that returns the holder's id.
* All times are the server's clock, so workers with skewed clocks agree.
* Leases, acks, nacks and lease extensions commit without waiting for the WAL
  flush (``synchronous_commit`` off for that one statement's transaction, via
  ``set_config(…, true)``: the pooled connection keeps the world's setting). A
  server crash may forget the last few of them, which only redelivers a message
  (or delivers it sooner), as a worker that died would have; the flush they skip
  was most of their time (~3 ms against ~0.2 ms on a busy disk). Enqueues and
  event writes stay durable, and any later durable commit flushes these too.
* An insert trigger NOTIFYs in the enqueuing transaction; idle receivers block on
  the world's ``Listener`` and also wake when the next delayed message or lease
  comes due, with a short poll as the safety net.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from wfkit.worlds.base import QueueMessage, QueueMessageRequest
from wfkit.worlds.postgres.loader import message_rows
from wfkit.worlds.postgres.notify import QUEUE_KEY, Listener
from wfkit.worlds.postgres.session import fetch_rows, fetch_scalar, text_array
from wfkit.worlds.postgres.sql import CODECS, TableNames
from wfkit.worlds.postgres.writes import insert_messages_sql

__all__ = ["PostgresQueue", "like_prefix"]


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching strings that start with ``prefix`` literally.

    Queue names are full of ``_``, a LIKE wildcard, so it is escaped (``\\`` is
    LIKE's default escape character)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


# Appended to a WHERE clause: the statement's (autocommit) transaction commits
# without waiting for the WAL flush (module docstring); a one-time filter,
# evaluated before the statement writes anything.
_LOSSY = " AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL"


def _lease_token(attempt: int | None) -> str | None:
    """A lease token as text (the statements cast it, ``%(attempt)s::int``): with only
    text and NULL parameters a statement takes ``session``'s raw path."""
    return None if attempt is None else str(int(attempt))


def _seconds(seconds: float) -> str:
    """A number of seconds as text, for the same reason (cast ``%(x)s::float8``)."""
    return repr(float(seconds))


class PostgresQueue:
    """``world.queue`` of the Postgres world."""

    def __init__(self, engine: Engine, names: TableNames, listener: Listener) -> None:
        self._engine = engine
        self._names = names
        self._listener = listener
        qm = names.queue_messages
        self._receive_sql = (
            f"WITH picked AS (SELECT message_id, visible_at AS was_visible_at, seq FROM {qm}"
            " WHERE visible_at <= clock_timestamp() AND queue LIKE ANY(%(patterns)s::text[])"
            " ORDER BY visible_at, seq LIMIT %(limit)s::int FOR UPDATE SKIP LOCKED)"
            f" UPDATE {qm} AS m SET visible_at = clock_timestamp()"
            " + make_interval(secs => %(lease)s::float8), attempt = m.attempt + 1"
            " FROM picked WHERE m.message_id = picked.message_id"
            + _LOSSY
            + " RETURNING m.*, picked.was_visible_at"
        )
        self._next_due_sql = (
            "SELECT EXTRACT(EPOCH FROM (min(visible_at) - clock_timestamp()))::float8"
            f" FROM {qm} WHERE queue LIKE ANY(%(patterns)s::text[])"
        )

    def enqueue(
        self,
        queue: str,
        payload: Mapping[str, Any],
        *,
        delay_seconds: float = 0.0,
        idempotency_key: str | None = None,
    ) -> str:
        """Add a message, visible after ``delay_seconds``.

        Returns:
            The new message's id, or the id of the unacked message holding
            ``idempotency_key`` (then nothing is added).

        Raises:
            InvalidEventError: the payload is not JSON-serializable.
        """
        request = QueueMessageRequest(
            queue=queue,
            payload=dict(payload),
            delay_seconds=delay_seconds,
            idempotency_key=idempotency_key,
        )
        rows = message_rows([request])
        params: dict[str, Any] = {"key": idempotency_key}
        insert = insert_messages_sql(self._names, "qm", rows, params)
        sql = (
            f"WITH ins AS ({insert} RETURNING message_id)"
            " SELECT message_id FROM ins UNION ALL"
            f" SELECT message_id FROM {self._names.queue_messages}"
            " WHERE %(key)s::text IS NOT NULL AND idempotency_key = %(key)s::text"
            " AND NOT EXISTS (SELECT 1 FROM ins)"
        )

        while True:
            # Nothing found: the holder committed (or was acked) after this
            # statement's snapshot; a fresh statement settles it.
            message_id = fetch_scalar(self._engine, sql, params)
            if message_id is not None:
                return str(message_id)

    def receive(
        self,
        prefixes: Sequence[str],
        *,
        lease_seconds: float,
        max_messages: int = 1,
        wait_seconds: float = 0.0,
    ) -> list[QueueMessage]:
        """Lease up to ``max_messages`` visible messages whose queue starts with a
        prefix, oldest first; block up to ``wait_seconds`` for one to appear.

        Each returned message is invisible to other receivers for
        ``lease_seconds`` and has its ``attempt`` incremented.

        Raises:
            ValueError: ``prefixes`` is empty.
        """
        if not prefixes:
            raise ValueError("receive needs at least one queue-name prefix")
        if max_messages <= 0:
            return []
        params = {
            "patterns": text_array(like_prefix(p) for p in prefixes),
            "limit": str(int(max_messages)),
            "lease": _seconds(lease_seconds),
        }
        messages = self._lease(params)
        if messages or wait_seconds <= 0:
            return messages
        deadline = time.monotonic() + wait_seconds
        with self._listener.subscribe(QUEUE_KEY) as subscription:
            while True:
                subscription.mark()
                messages = self._lease(params)
                remaining = deadline - time.monotonic()
                if messages or remaining <= 0:
                    return messages
                due = self._seconds_until_due(params)
                if due is not None:
                    remaining = min(remaining, max(due, 0.001))
                subscription.wait(remaining)

    def _lease(self, params: dict[str, Any]) -> list[QueueMessage]:
        rows = fetch_rows(self._engine, self._receive_sql, params)
        rows.sort(key=lambda row: (row["was_visible_at"], row["seq"]))
        return [CODECS.message.from_row(row) for row in rows]

    def _seconds_until_due(self, params: dict[str, Any]) -> float | None:
        value = fetch_scalar(self._engine, self._next_due_sql, params)
        return None if value is None else float(value)

    def _execute(self, sql: str, params: dict[str, Any]) -> Any:
        return fetch_scalar(self._engine, sql, params)

    # With a lease token (``attempt``), a write applies only while that lease is current;
    # it need not wait for the WAL flush (module docstring).
    _LEASED = " AND (%(attempt)s::int IS NULL OR attempt = %(attempt)s::int)" + _LOSSY

    def ack(self, message_id: str, *, attempt: int | None = None) -> None:
        """Delete the message (a no-op when it is gone or, with ``attempt``, re-leased);
        frees its key."""
        self._execute(
            f"DELETE FROM {self._names.queue_messages} WHERE message_id = %(id)s" + self._LEASED,
            {"id": message_id, "attempt": _lease_token(attempt)},
        )

    def nack(
        self, message_id: str, *, delay_seconds: float = 0.0, attempt: int | None = None
    ) -> None:
        """Make a leased message visible again after ``delay_seconds``."""
        self._execute(
            f"WITH u AS (UPDATE {self._names.queue_messages}"
            " SET visible_at = clock_timestamp() + make_interval(secs => %(delay)s::float8)"
            " WHERE message_id = %(id)s" + self._LEASED + " RETURNING 1)"
            " SELECT pg_notify(%(channel)s, '') FROM u",
            {
                "id": message_id,
                "delay": _seconds(max(0.0, float(delay_seconds))),
                "channel": self._names.queue_channel,
                "attempt": _lease_token(attempt),
            },
        )

    def extend_lease(
        self, message_id: str, *, lease_seconds: float, attempt: int | None = None
    ) -> None:
        """Keep a leased message invisible for ``lease_seconds`` from now."""
        self._execute(
            f"UPDATE {self._names.queue_messages}"
            " SET visible_at = clock_timestamp() + make_interval(secs => %(lease)s::float8)"
            " WHERE message_id = %(id)s" + self._LEASED,
            {"id": message_id, "lease": _seconds(lease_seconds), "attempt": _lease_token(attempt)},
        )

    def live_run_ids(self) -> set[str]:
        """Run ids that have at least one message not yet acked."""

        rows = fetch_rows(
            self._engine,
            f"SELECT DISTINCT run_id FROM {self._names.queue_messages} WHERE run_id IS NOT NULL",
        )
        return {str(row["run_id"]) for row in rows}

    def queue_names(self, prefix: str) -> set[str]:
        """Names of the queues starting with ``prefix`` that hold a message not yet acked."""
        rows = fetch_rows(
            self._engine,
            f"SELECT DISTINCT queue FROM {self._names.queue_messages} WHERE queue LIKE %(pattern)s",
            {"pattern": like_prefix(prefix)},
        )
        return {str(row["queue"]) for row in rows}

    def delete_messages(self, run_id: str) -> int:
        """Drop every message of a run; returns how many (fault tests; the sweep recovers)."""
        count = self._execute(
            f"WITH d AS (DELETE FROM {self._names.queue_messages}"
            " WHERE run_id = %(run_id)s RETURNING 1) SELECT count(*) FROM d",
            {"run_id": run_id},
        )
        return int(count or 0)
