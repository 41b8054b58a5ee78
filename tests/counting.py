"""A ``world.events`` that counts the write transactions asked of it: one per
``create``/``create_batch`` call and one per ``create_batches`` call (a group
commit), with the run writes they carried. Shared by the group-commit and
start-many tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wfkit.worlds.base import BatchOutcome, BatchWrite, EventRequest, EventResult, Events


class CountingEvents:
    """Wraps ``inner`` (a world's ``events``), counting what it writes."""

    def __init__(self, inner: Events) -> None:
        self.inner = inner
        self.transactions = 0
        self.writes = 0
        self.largest_group = 0

    def create(self, run_id: str | None, request: EventRequest) -> EventResult:
        self.transactions += 1
        self.writes += 1
        return self.inner.create(run_id, request)

    def create_batch(self, run_id: str, requests: Sequence[EventRequest], **options: Any) -> Any:
        self.transactions += 1
        self.writes += 1
        return self.inner.create_batch(run_id, requests, **options)

    def create_batches(self, writes: Sequence[BatchWrite]) -> list[BatchOutcome]:
        self.transactions += 1
        self.writes += len(writes)
        self.largest_group = max(self.largest_group, len(writes))
        return self.inner.create_batches(writes)

    def __getattr__(self, name: str) -> Any:
        if name == "prepare_batches":  # counted like create_batches, when inner has it
            prepare = getattr(self.inner, name)

            def counted(writes: Sequence[BatchWrite]) -> Any:
                self.transactions += 1
                self.writes += len(writes)
                self.largest_group = max(self.largest_group, len(writes))
                return prepare(writes)

            return counted
        return getattr(self.inner, name)
