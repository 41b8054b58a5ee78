"""The garbage collector's settings for a process that is a worker.

A worker allocates a few hundred short-lived container objects per step
(records, events, futures, replay bookkeeping) and keeps a large, long-lived
heap: every loaded module, the build's registries, the cached suspended
replays. With CPython's default thresholds (a young collection every 700 net
allocations, a full one every 100 young ones) the collector walked that whole
long-lived heap ~9 times per 2,000 runs and took 20-45 % of a worker's CPU
(``bench.worker_cpu``: ~1.5 s of collections per 2,000 five-step runs on local).

``tune_for_worker`` moves everything alive at start-up (the loaded code) out of
the collector's sight (``gc.freeze``) and makes young collections rarer, so
short-lived objects die by reference counting before a collection ever sees them
(the replay leaves no reference cycles behind a run): ~0.2 s per 2,000 runs.
Memory held by garbage cycles, if any, is reclaimed a little later. The worker
commands (``wfkit worker``, ``wfkit serve``) call it once their build is loaded;
a program embedding ``Worker`` in its own process may call it too.
``WFKIT_GC_THRESHOLD=0`` leaves Python's defaults.
"""

from __future__ import annotations

import gc
import logging
import os

__all__ = ["DEFAULT_THRESHOLD", "tune_for_worker"]

log = logging.getLogger("wfkit.worker")

DEFAULT_THRESHOLD = 50_000
"""Net container allocations between two young collections (Python's default: 700)."""


def tune_for_worker(threshold: int | None = None) -> int:
    """Freeze the heap as it is and raise the young generation's threshold.

    Args:
        threshold: young-generation threshold (default: ``WFKIT_GC_THRESHOLD``,
            else ``DEFAULT_THRESHOLD``); 0 changes nothing.

    Returns:
        The threshold now in force for the young generation.
    """
    if threshold is None:
        given = os.environ.get("WFKIT_GC_THRESHOLD", "").strip()
        try:
            threshold = int(given) if given else DEFAULT_THRESHOLD
        except ValueError:
            log.warning(
                "WFKIT_GC_THRESHOLD=%r is not a whole number; using %d", given, DEFAULT_THRESHOLD
            )
            threshold = DEFAULT_THRESHOLD
    young, middle, old = gc.get_threshold()
    if threshold <= 0:
        return young
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(young, threshold), middle, old)
    return gc.get_threshold()[0]
