"""Reading records inside an event transaction of the Postgres world.

``TransactionLoader.lock_runs`` locks the rows of the runs a transaction writes
(``SELECT … FOR UPDATE``, in run id order) and prefetches, pipelined in the same
round trip, the steps, hooks and waits their requests refer to; the lifecycle
rules' lookups then hit its caches. ``message_rows`` checks and shapes the queue
messages a batch enqueues.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wfkit.worlds.base import (
    Event,
    EventRequest,
    EventType,
    Hook,
    QueueMessageRequest,
    Run,
    Step,
    Wait,
    new_id,
    normalize_json,
)
from wfkit.worlds.postgres.session import Session, Statement, text_array
from wfkit.worlds.postgres.sql import CODECS, CompiledSql, TableNames, compile_statement
from wfkit.worlds.sql import RecordStatements, decode_events, dump_json

__all__ = ["LoaderSql", "TransactionLoader", "message_rows"]

_PAYLOADS = ("input", "output", "error")
_RUN_WITHOUT_PAYLOADS = ", ".join(
    f"NULL AS {name}" if name in _PAYLOADS else name
    for name in (*CODECS.run.columns, "last_event_id")
)


@dataclass(frozen=True)
class LoaderSql:
    """The shared record lookups (``wfkit.worlds.sql.RecordStatements``) of one
    world, compiled for psycopg."""

    run: CompiledSql
    step: CompiledSql
    hook: CompiledSql
    active_hook_by_token: CompiledSql
    wait: CompiledSql
    waits_of_run: CompiledSql
    latest_event_of_type: CompiledSql

    @classmethod
    def build(cls, statements: RecordStatements) -> LoaderSql:
        """Compile the lookups of ``statements`` (one world's schema)."""
        return cls(
            run=compile_statement(statements.run),
            step=compile_statement(statements.step),
            hook=compile_statement(statements.hook),
            active_hook_by_token=compile_statement(statements.active_hook_by_token),
            wait=compile_statement(statements.wait),
            waits_of_run=compile_statement(statements.waits_of_run),
            latest_event_of_type=compile_statement(statements.latest_event_of_type),
        )


@dataclass
class _Wanted:
    """The records some runs' requests refer to, by kind, as (run id, id) keys."""

    keys: dict[str, list[tuple[str, str]]]
    run_events: bool

    @classmethod
    def of(cls, reads: Sequence[tuple[str, Sequence[EventRequest]]]) -> _Wanted:
        keys: dict[str, list[tuple[str, str]]] = {"step": [], "hook": [], "wait": []}
        run_events = False
        for run_id, requests in reads:
            for request in requests:
                kind = request.event_type.split("_", 1)[0]
                if kind in keys and request.correlation_id:
                    keys[kind].append((run_id, request.correlation_id))
                run_events = run_events or kind == "run"
        return cls(keys, run_events)


class TransactionLoader:
    """A ``wfkit.worlds.base.RecordLoader`` reading through one open transaction.

    ``lock_and_prefetch`` fills caches in one round trip; the lookups the
    lifecycle rules make afterwards hit the caches (a miss queries)."""

    def __init__(self, session: Session, names: TableNames, sql: LoaderSql) -> None:
        self._session = session
        self._names = names
        self._sql = sql
        self._runs: dict[str, Run | None] = {}
        self._last_event_ids: dict[str, str | None] = {}
        self._steps: dict[tuple[str, str], Step | None] = {}
        self._hooks: dict[str, Hook | None] = {}
        self._waits: dict[tuple[str, str], Wait | None] = {}
        self._tokens: dict[str, Hook | None] = {}

    def _rows(self, sql: CompiledSql, **values: Any) -> list[dict[str, Any]]:
        return self._session.rows(sql.sql, sql.params(values))

    def lock_and_prefetch(self, run_id: str, requests: Sequence[EventRequest]) -> None:
        """Lock the run's row until the transaction ends and load, in the same round
        trip, the records ``requests`` refer to."""
        self.lock_runs([run_id], [(run_id, requests)])

    def lock_runs(
        self,
        run_ids: Sequence[str],
        reads: Sequence[tuple[str, Sequence[EventRequest]]],
        idempotency_keys: Sequence[str] = (),
    ) -> set[str]:
        """Lock the rows of ``run_ids`` (in run id order: two groups never wait on
        each other in a cycle) and load, in the same round trip, the records each
        run's requests in ``reads`` refer to.

        Returns:
            Which of ``idempotency_keys`` a stored run already holds.
        """
        names = self._names
        wanted = _Wanted.of(reads)
        # A batch without run events only checks the run's status, and never
        # returns or writes the run record: skip its (possibly large) payloads.
        columns = "*" if wanted.run_events else _RUN_WITHOUT_PAYLOADS
        locked = sorted(set(run_ids))
        statements: list[Statement] = [
            (
                f"SELECT {columns} FROM {names.runs} WHERE run_id = ANY(%(run_ids)s::text[])"
                " ORDER BY run_id FOR UPDATE",
                {"run_ids": text_array(locked)},
            )
        ]
        kinds = [kind for kind, keys in wanted.keys.items() if keys]
        for kind in kinds:
            table, key = {
                "step": (names.steps, "step_id"),
                "hook": (names.hooks, "hook_id"),
                "wait": (names.waits, "wait_id"),
            }[kind]
            keys = wanted.keys[kind]
            run_filter = "" if kind == "hook" else "run_id = ANY(%(run_ids)s::text[]) AND "
            params = {
                "run_ids": text_array(sorted({r for r, _ in keys})),
                "ids": text_array(sorted({i for _, i in keys})),
            }
            statements.append(
                (f"SELECT * FROM {table} WHERE {run_filter}{key} = ANY(%(ids)s::text[])", params)
            )
        if idempotency_keys:
            statements.append(
                (
                    f"SELECT idempotency_key FROM {names.runs}"
                    " WHERE idempotency_key = ANY(%(keys)s::text[])",
                    {"keys": text_array(idempotency_keys)},
                )
            )
        results = self._session.query(*statements)
        self._runs.update(dict.fromkeys(locked))
        self._last_event_ids.update(dict.fromkeys(locked))
        for row in results[0]:
            self._runs[row["run_id"]] = CODECS.run.from_row(row)
            self._last_event_ids[row["run_id"]] = row["last_event_id"]
        for kind, rows in zip(kinds, results[1:], strict=False):
            self._cache(kind, wanted.keys[kind], rows)
        return {row["idempotency_key"] for row in results[-1]} if idempotency_keys else set()

    def _cache(self, kind: str, keys: list[tuple[str, str]], rows: list[dict[str, Any]]) -> None:
        """Remember prefetched records of ``kind``, and that the other ``keys`` have none."""
        if kind == "step":
            self._steps.update(dict.fromkeys(keys))
            self._steps.update({(r["run_id"], r["step_id"]): CODECS.step.from_row(r) for r in rows})
        elif kind == "hook":
            self._hooks.update(dict.fromkeys(i for _, i in keys))
            self._hooks.update({r["hook_id"]: CODECS.hook.from_row(r) for r in rows})
        else:
            self._waits.update(dict.fromkeys(keys))
            self._waits.update({(r["run_id"], r["wait_id"]): CODECS.wait.from_row(r) for r in rows})

    def load_run(self, run_id: str) -> Run | None:
        if run_id not in self._runs:
            rows = self._rows(self._sql.run, run_id=run_id)
            self._runs[run_id] = CODECS.run.from_row(rows[0]) if rows else None
        return self._runs[run_id]

    def load_last_event_id(self, run_id: str) -> str | None:
        if run_id not in self._last_event_ids:
            self.lock_and_prefetch(run_id, ())
        return self._last_event_ids[run_id]

    def load_step(self, run_id: str, step_id: str) -> Step | None:
        key = (run_id, step_id)
        if key not in self._steps:
            rows = self._rows(self._sql.step, run_id=run_id, step_id=step_id)
            self._steps[key] = CODECS.step.from_row(rows[0]) if rows else None
        return self._steps[key]

    def load_hook(self, hook_id: str) -> Hook | None:
        if hook_id not in self._hooks:
            rows = self._rows(self._sql.hook, hook_id=hook_id)
            self._hooks[hook_id] = CODECS.hook.from_row(rows[0]) if rows else None
        return self._hooks[hook_id]

    def load_active_hook_by_token(self, token: str) -> Hook | None:
        # Cached: under READ COMMITTED a second query could see another run's hook
        # committed meanwhile, and the rules must see one consistent answer (a
        # race is settled by the unique index and a retry instead).
        if token not in self._tokens:
            rows = self._rows(self._sql.active_hook_by_token, token=token)
            self._tokens[token] = CODECS.hook.from_row(rows[0]) if rows else None
        return self._tokens[token]

    def load_wait(self, run_id: str, wait_id: str) -> Wait | None:
        key = (run_id, wait_id)
        if key not in self._waits:
            rows = self._rows(self._sql.wait, run_id=run_id, wait_id=wait_id)
            self._waits[key] = CODECS.wait.from_row(rows[0]) if rows else None
        return self._waits[key]

    def load_waits_of_run(self, run_id: str) -> list[Wait]:
        rows = self._rows(self._sql.waits_of_run, run_id=run_id)
        waits = [CODECS.wait.from_row(row) for row in rows]
        self._waits.update({(run_id, wait.wait_id): wait for wait in waits})
        return waits

    def load_latest_event(self, run_id: str, event_type: EventType) -> Event | None:
        rows = self._rows(self._sql.latest_event_of_type, run_id=run_id, event_type=event_type)
        return decode_events(CODECS.event, rows[:1])[0] if rows else None


def message_rows(messages: Sequence[QueueMessageRequest]) -> list[dict[str, Any]]:
    """Rows for ``writes.insert_messages_sql`` (payloads JSON-checked before any write).

    Raises:
        InvalidEventError: a payload is not JSON-serializable.
    """
    rows = []
    for message in messages:
        payload = normalize_json(message.payload)
        run_id = payload.get("run_id")
        rows.append(
            {
                "message_id": new_id("msg"),
                "queue": message.queue,
                "payload": dump_json(payload),
                "idempotency_key": message.idempotency_key,
                "run_id": run_id if isinstance(run_id, str) else None,
                "delay": max(0.0, float(message.delay_seconds)),
            }
        )
    return rows
