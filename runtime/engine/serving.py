"""Which deployments a worker serves: its queue prefixes, each message's registry scope,
and the kept deployments it takes on.

A worker serves the deployments it loaded: the builds it was given (the newest one
loaded first, under the shared twin prefixes; older builds of the same project
isolated, see ``wfkit.runtime.loading.loader``), or, when it was given none (an
in-process worker: ``wfkit.run``, tests), every build this process has loaded. It
receives only those deployments' queues (``messages.queue_prefixes``), plus the
unpinned runs' queues, which it serves with its newest deployment.

Each message runs in the registry scope of its deployment (``registry.using_scope``),
so a v1 run replays v1's workflow and runs v1's steps in a worker that also serves v2.
An unpinned queue may still carry a message of a pinned run (a wfkit 0.1.0 worker's
sweep re-enqueues every run under 0.1.0's names): that message is moved to the run's
own queue instead of being served with the wrong code.

**Adopting** (``adopt``): a worker can also serve other deployments' runs with its own
newest code -- the way to move in-flight runs to new code once the old code's workers
are gone (``wfkit.patched()`` keeps their replays on the branches they took; the replay
check says whether they will replay). Their messages stay on their deployment's queues
(a run records the deployment it started on) and each runs in a scope with this
worker's code (``registry.scope_for(..., code_of=...)``); a child run they start stays on
their deployment, so it is adopted too.

Kept deployments (``.wfkit/deployments/<id>``, see ``wfkit.runtime.loading.deployments``)
with runs in flight are loaded when the worker starts and at each sweep, so a worker of
the new code also finishes the runs of the builds before it. Only those kept before the
worker started: a build kept later is newer than the worker's own code, and the
modules it shares with it (those without directives) are loaded at their older
versions in this process; that build's own workers serve it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from wfkit.runtime.engine.messages import (
    STEP_QUEUE_PREFIX,
    StepMessage,
    WorkflowMessage,
    queue_prefixes,
    step_message,
    workflow_message,
)
from wfkit.runtime.loading import registry
from wfkit.runtime.loading.deployments import (
    is_deployment_id,
    keep_deployment,
    kept_deployments,
    project_of_build,
)
from wfkit.runtime.loading.loader import (
    load_build,
    loaded_build,
    loaded_build_at,
    loaded_builds,
    loads_generation,
)
from wfkit.worlds.base import QueueMessage, Run, RunNotFoundError, RunStatus, World, WorldError

__all__ = ["ADOPT_ALL", "ServedDeployments", "deployments_in_flight"]

log = logging.getLogger("wfkit.worker")

_IN_FLIGHT: tuple[RunStatus, ...] = ("pending", "running")
ADOPT_ALL = "all"


def deployments_in_flight(world: World) -> set[str]:
    """The deployments that have runs not yet ended ("" for unpinned runs)."""
    return {
        run.deployment_id
        for status in _IN_FLIGHT
        for run in world.runs.list(status=status, limit=1_000_000)
    }


class ServedDeployments:
    """The deployments one worker serves.

    Args:
        builds: build directories to load and serve, oldest first (the last is the
            newest: it serves unpinned runs); empty: serve whatever this process loads.
        serve_unpinned: also serve runs recorded without a deployment.
        kept_root: the project whose kept deployments with runs in flight are served
            too (None: none); the given builds that are that project's own
            ``.wfkit/build`` are kept there first.
        adopt: deployment IDs whose runs this worker serves with its newest code, or
            ``"all"``: every deployment it does not serve itself (kept copies of adopted
            deployments are not served: adopting moves their runs to this code).

    Raises:
        FileNotFoundError, InvalidBuildError: a given build is missing or incomplete.
    """

    def __init__(
        self,
        builds: Sequence[Path | str] = (),
        *,
        serve_unpinned: bool = True,
        kept_root: Path | None = None,
        adopt: Sequence[str] = (),
    ) -> None:
        self.serve_unpinned = serve_unpinned
        self.kept_root = kept_root
        self.adopts_all = ADOPT_ALL in adopt
        self.adopted = frozenset(d for d in adopt if d != ADOPT_ALL)
        for deployment_id in self.adopted:
            if not is_deployment_id(deployment_id):
                raise ValueError(
                    f"adopt: {deployment_id!r} is neither a deployment ID (d_ and 24 hex "
                    f"digits) nor {ADOPT_ALL!r}"
                )
        self._explicit: list[str] | None = None
        self._unloadable: set[str] = set()
        self._served: tuple[tuple[int, int], tuple[str, ...], list[str]] | None = None
        self._started_at = datetime.now(UTC)
        if builds:
            self._explicit = []
            for build_dir in reversed(builds):  # the newest first: it gets the shared prefixes
                load_build(Path(build_dir))
                loaded = loaded_build_at(Path(build_dir))
                assert loaded is not None
                if loaded.deployment_id not in self._explicit:
                    self._explicit.insert(0, loaded.deployment_id)
        if kept_root is not None:
            for deployment_id in self.deployment_ids():
                loaded = loaded_build(deployment_id)
                if loaded is not None and project_of_build(loaded.build_dir) == kept_root:
                    keep_deployment(loaded.build_dir, kept_root)

    def deployment_ids(self) -> list[str]:
        """The deployments served, newest first."""
        return list(self._current()[1])

    def serves(self, deployment_id: str) -> bool:
        """Whether this worker serves runs of ``deployment_id`` ("": unpinned runs) with
        that deployment's own code."""
        if not deployment_id:
            return self.serve_unpinned
        return deployment_id in self._current()[1]

    def adopts(self, deployment_id: str) -> bool:
        """Whether this worker runs ``deployment_id``'s runs on its own newest code."""
        if not deployment_id or self.serves(deployment_id):
            return False
        return self.adopts_all or deployment_id in self.adopted

    def prefixes(self) -> list[str]:
        """The queue prefixes to receive by (recomputed when a build is loaded)."""
        return self._current()[2]

    def _current(self) -> tuple[tuple[int, int], tuple[str, ...], list[str]]:
        """(what it was computed for, the deployments newest first, their queue prefixes),
        recomputed only when a build was loaded or a kept one taken on: this is asked for
        every message and every poll."""
        stamp = (loads_generation(), -1 if self._explicit is None else len(self._explicit))
        cached = self._served
        if cached is None or cached[0] != stamp:
            if self._explicit is None:
                ids = tuple(build.deployment_id for build in loaded_builds())
            else:
                ids = tuple(reversed(self._explicit))
            prefixes = queue_prefixes(
                [*ids, *sorted(self.adopted)],
                serve_unpinned=self.serve_unpinned,
                every_pinned_run=self.adopts_all,
            )
            cached = (stamp, ids, prefixes)
            self._served = cached
        return cached

    def scope_for(self, deployment_id: str) -> registry.Scope | None:
        """The registry scope of a message of ``deployment_id`` (its own code, or this
        worker's newest code for an adopted deployment); None when not served."""
        if self.serves(deployment_id):
            return registry.scope_for(deployment_id)
        if self.adopts(deployment_id):
            newest = self._current()[1]
            if newest:
                return registry.scope_for(deployment_id, code_of=newest[0])
        return None

    def serve_kept_in_flight(self, world: World) -> list[str]:
        """Load the kept deployments that have runs in flight, were kept before this
        worker started, and are not served yet.

        A kept copy that fails to load is logged once and skipped (the worker goes on
        serving the rest).

        Returns:
            The deployments taken on.
        """
        if self.kept_root is None:
            return []
        served = set(self.deployment_ids())
        waiting = [
            kept
            for kept in kept_deployments(self.kept_root)
            if kept.deployment_id not in served
            and kept.deployment_id not in self._unloadable
            and kept.kept_at < self._started_at
            and not self.adopts_all
            and kept.deployment_id not in self.adopted
        ]
        if not waiting:
            return []
        in_flight = deployments_in_flight(world)
        taken = []
        for kept in waiting:
            if kept.deployment_id not in in_flight:
                continue
            try:
                load_build(kept.path)
            except Exception as exc:  # its code runs on import: anything may be raised
                self._unloadable.add(kept.deployment_id)
                log.warning(
                    "kept deployment %s (%s) cannot be loaded; its runs wait for a worker that "
                    "serves it: %s",
                    kept.deployment_id,
                    kept.path,
                    exc,
                )
                continue
            if self._explicit is not None:
                self._explicit.insert(0, kept.deployment_id)
            taken.append(kept.deployment_id)
        if taken:
            log.info("serving kept deployment(s) with runs in flight: %s", ", ".join(taken))
        return taken

    def reroute_if_pinned(
        self,
        world: World,
        message: QueueMessage,
        route: WorkflowMessage | StepMessage,
        *,
        run: Run | None = None,
    ) -> bool:
        """Move a message of a pinned run found on an unpinned queue to its run's own
        queue; whether it was moved (the caller then acks it).

        Args:
            world: where the run lives.
            message: the message received on an unpinned queue.
            route: what it asks for.
            run: the run's record when the caller has it (a run's deployment never
                changes, so any copy does); None: read here.
        """
        if run is None:
            try:
                run = world.runs.get(route.run_id)
            except RunNotFoundError:
                return False  # the handler drops it
        if not run.deployment_id:
            return False
        if isinstance(route, WorkflowMessage):
            moved = workflow_message(
                run.workflow_name,
                run.run_id,
                deployment_id=run.deployment_id,
                idempotency_key=f"moved:{message.message_id}",
            )
        else:
            step_name = message.queue.removeprefix(STEP_QUEUE_PREFIX)
            moved = step_message(
                run.run_id, route.step_id, step_name, deployment_id=run.deployment_id
            )
        try:
            world.queue.enqueue(moved.queue, moved.payload, idempotency_key=moved.idempotency_key)
        except WorldError as exc:
            log.warning("could not move message %s to %s: %s", message.message_id, moved.queue, exc)
            return False
        log.info(
            "message %s of run %s (deployment %s) came on an unpinned queue; moved to %s",
            message.message_id,
            run.run_id,
            run.deployment_id,
            moved.queue,
        )
        return True
