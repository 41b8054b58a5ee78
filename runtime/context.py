"""Where the running code is: client code, a workflow replay, or a step.

Context variables carry the current mode and the active workflow or step, so the
same function object can behave right wherever it is called: a step proxy records
a durable call inside a replay and simply runs the step elsewhere.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from wfkit.worlds.base import World

Mode = Literal["client", "workflow", "step"]

current_mode: ContextVar[Mode] = ContextVar("wfkit_mode", default="client")


@dataclass(frozen=True)
class WorkflowMetadata:
    """What ``get_workflow_metadata()`` returns, in workflows and in steps."""

    workflow_name: str
    workflow_run_id: str
    workflow_started_at: datetime
    url: str = ""


@dataclass(frozen=True)
class StepMetadata:
    """What ``get_step_metadata()`` returns inside a step.

    Attributes:
        step_id: this call's id (``step_…``).
        step_name: the step function's ID (``step//./<path>//<qualname>``).
        attempt: the attempt, from 1.
        step_started_at: when the first attempt started.
    """

    step_id: str
    step_name: str
    attempt: int
    step_started_at: datetime


class WorkflowContext(Protocol):
    """What a workflow replay offers the code it runs (implemented by the replay session)."""

    metadata: WorkflowMetadata

    @property
    def random(self) -> random.Random:
        """The run's deterministic random generator (seeded by the run id)."""
        ...

    def now(self) -> datetime:
        """The workflow clock: the run's start, advanced to each consumed event's time."""
        ...

    def uuid4(self) -> uuid.UUID: ...

    def call_step(
        self,
        step_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        closure: dict[str, Any] | None = None,
        this: Any = None,
    ) -> Awaitable[Any]:
        """Record (or replay) one durable step call; await it for the step's result."""
        ...


@dataclass(frozen=True)
class StepContext:
    """The step being executed in this task."""

    step: StepMetadata
    workflow: WorkflowMetadata
    run_id: str
    world: World | None = None


current_workflow: ContextVar[WorkflowContext | None] = ContextVar("wfkit_workflow", default=None)
current_step: ContextVar[StepContext | None] = ContextVar("wfkit_step", default=None)
