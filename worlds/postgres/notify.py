"""LISTEN/NOTIFY wake-ups for idle queue receivers and stream readers.

One dedicated psycopg connection in autocommit mode LISTENs on the world's two
channels (see ``schema.notify_channels``); a daemon thread owns it and fans
notifications out to waiting threads through one ``threading.Condition``.
Waiters never trust a notification to carry data: a wake-up only means "look
again", so the protocol is

1. ``sub.mark()`` — remember the current version of what we watch;
2. query the database; return if there is something;
3. ``sub.wait(timeout)`` — sleep until the version moves (a notification, or a
   reconnect, which bumps every version because notifications may have been
   missed meanwhile) or a short poll interval passes.

A notification that arrives between 1 and 3 moves the version, so nothing is
lost; a notification the listener never saw (it was reconnecting) costs at most
one poll interval. The thread reconnects with backoff when the connection drops
(e.g. a server restart), and is started lazily by the first waiter.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Hashable, Iterator, Mapping
from typing import Any

import psycopg

__all__ = ["Listener", "Subscription"]

QUEUE_KEY = "queue"
POLL_CONNECTED = 1.0
"""Longest sleep between database checks while LISTEN is up (a safety net)."""
POLL_DISCONNECTED = 0.1
"""Sleep between database checks while the LISTEN connection is down."""


class Subscription:
    """One waiter's view of a watched key (the queue, or one stream)."""

    def __init__(self, listener: Listener, key: Hashable) -> None:
        self._listener = listener
        self._key = key
        self._seen = listener.version(key)

    def mark(self) -> None:
        """Remember the current version; call it before checking the database."""
        self._seen = self._listener.version(self._key)

    def wait(self, timeout: float) -> bool:
        """Sleep until the version moves past the mark, a poll interval, or ``timeout``.

        Returns:
            True when woken by a change, False on a poll interval or timeout.
        """
        return self._listener.wait_for_change(self._key, self._seen, timeout)


class Listener:
    """The LISTEN connection of one world and the thread that drains it."""

    def __init__(
        self, connect_kwargs: Mapping[str, Any], *, queue_channel: str, stream_channel: str
    ) -> None:
        self._connect_kwargs = dict(connect_kwargs)
        self._queue_channel = queue_channel
        self._stream_channel = stream_channel
        self._condition = threading.Condition()
        self._epoch = 0
        self._versions: Counter[Hashable] = Counter()
        self._watchers: Counter[Hashable] = Counter()
        self._connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        """Whether LISTEN is currently established."""
        return self._connected

    def version(self, key: Hashable) -> tuple[int, int]:
        """The (reconnect epoch, notification count) of ``key``."""
        with self._condition:
            return (self._epoch, self._versions[key])

    @contextlib.contextmanager
    def subscribe(self, key: Hashable) -> Iterator[Subscription]:
        """Watch ``key`` (``QUEUE_KEY`` or ``("stream", run_id, name)``) for the block."""
        self._ensure_started()
        with self._condition:
            self._watchers[key] += 1
        try:
            yield Subscription(self, key)
        finally:
            with self._condition:
                self._watchers[key] -= 1
                if self._watchers[key] <= 0:
                    del self._watchers[key]
                    if key != QUEUE_KEY:
                        self._versions.pop(key, None)

    def wait_for_change(self, key: Hashable, seen: tuple[int, int], timeout: float) -> bool:
        """See ``Subscription.wait``."""
        with self._condition:
            cap = POLL_CONNECTED if self._connected else POLL_DISCONNECTED
            return self._condition.wait_for(
                lambda: (self._epoch, self._versions[key]) != seen,
                timeout=max(0.0, min(timeout, cap)),
            )

    def wait_connected(self, timeout: float) -> bool:
        """Block until LISTEN is up (tests); True when it is."""
        self._ensure_started()
        with self._condition:
            return self._condition.wait_for(lambda: self._connected, timeout=timeout)

    def after_fork(self) -> None:
        """Forget the parent's thread and connection in a forked child (the thread
        did not survive the fork); the next waiter starts a fresh one."""
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._thread = None
        self._connected = False
        self._watchers.clear()

    def close(self) -> None:
        """Stop the thread and close the LISTEN connection."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _ensure_started(self) -> None:
        with self._condition:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="wfkit-postgres-listen", daemon=True
                )
                self._thread.start()

    def _bump_all(self, *, connected: bool) -> None:
        with self._condition:
            self._connected = connected
            self._epoch += 1
            self._condition.notify_all()

    def _deliver(self, channel: str, payload: str) -> None:
        with self._condition:
            if channel == self._queue_channel:
                self._versions[QUEUE_KEY] += 1
            else:
                try:
                    run_id, name = json.loads(payload)
                    key: Hashable = ("stream", run_id, name)
                except (ValueError, TypeError):
                    self._epoch += 1  # an unreadable payload: wake every stream reader
                else:
                    if key in self._watchers:
                        self._versions[key] += 1
            self._condition.notify_all()

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                with psycopg.connect(**self._connect_kwargs, autocommit=True) as connection:
                    for channel in (self._queue_channel, self._stream_channel):
                        connection.execute(f'LISTEN "{channel}"')
                    self._bump_all(connected=True)
                    backoff = 0.05
                    while not self._stop.is_set():
                        for note in connection.notifies(timeout=0.25):
                            self._deliver(note.channel, note.payload)
            except Exception:  # any failure: drop the connection and reconnect
                pass
            self._bump_all(connected=False)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 2.0)
