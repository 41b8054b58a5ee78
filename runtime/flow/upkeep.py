"""What every worker does for flow control a few times a second, off its event loop:
admit the waiting runs of the queues it declares, fire due schedule ticks."""

from __future__ import annotations

import logging
import time

from wfkit.runtime.flow.queues import (
    admit_holding_token,
    announce,
    declared_queues,
    has_waiting_runs,
)
from wfkit.runtime.flow.schedules import fire_due_schedules
from wfkit.worlds.base import World, WorldError

__all__ = ["FlowUpkeep"]

log = logging.getLogger("wfkit.flow")


class FlowUpkeep:
    """One worker's admission and schedule passes.

    Args:
        world: the world.
        worker_id: this worker's id (recorded on the runs it admits).
        schedule_interval: seconds between schedule passes.
    """

    def __init__(self, world: World, worker_id: str, *, schedule_interval: float = 0.25) -> None:
        self.world = world
        self.worker_id = worker_id
        self.schedule_interval = schedule_interval
        self._last_schedules = 0.0
        self._announced: set[str] = set()

    def run_once(self) -> int | None:
        """One pass: admit what each declared queue allows; fire due ticks when the
        schedule interval has passed.

        Returns:
            How many runs it admitted or fired; None when no run waited in any
            declared queue and no tick fired (the worker may look less often).
        """
        count = 0
        waiting = False
        for queue in declared_queues():
            try:
                if queue.name not in self._announced:
                    announce(self.world, queue)
                    self._announced.add(queue.name)
                if has_waiting_runs(self.world, queue):
                    waiting = True
                    count += len(admit_holding_token(self.world, queue, self.worker_id))
            except WorldError as exc:
                log.warning("admission of queue %s failed: %s", queue.name, exc)
        now = time.monotonic()
        if now - self._last_schedules >= self.schedule_interval:
            self._last_schedules = now
            try:
                count += len(fire_due_schedules(self.world))
            except WorldError as exc:
                log.warning("firing schedules failed: %s", exc)
        return count if waiting or count else None
