"""The errors a world raises; their tree is drawn in the ``wfkit.worlds.base`` package
docstring (``worlds/base/__init__.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wfkit.worlds.base.records import Event


class WfkitError(Exception):
    """Base of every error wfkit raises to users."""


class WorldError(WfkitError):
    """Something a world refused or could not find."""


class WorldUnavailableError(WorldError):
    """The world's database cannot be reached now (a server down or starting up);
    trying again later may succeed. Nothing was written."""


class EntityConflictError(WorldError):
    """A transition the lifecycle table does not allow, or a duplicate creation event.

    Nothing was written."""


class RunNotFoundError(WorldError):
    pass


class StepNotFoundError(WorldError):
    pass


class HookNotFoundError(WorldError):
    pass


class WaitNotFoundError(WorldError):
    pass


class ScheduleNotFoundError(WorldError):
    pass


class SchemaVersionError(WorldError):
    """A store this code cannot open: written by a newer wfkit, or recording no valid
    schema version. Nothing was changed."""


class InvalidEventError(WorldError, ValueError):
    """An event request that is malformed (a missing correlation id or data field).

    Nothing was written."""


class CorruptedLogError(WorldError):
    """A stored event log that cannot be read or folded: a row whose data is not JSON,
    whose type is unknown or whose shape does not validate, or an event the lifecycle
    rules refuse at its position.

    Attributes (set when the error comes from reading a row; None/empty otherwise):
        run_id: the run whose log holds it.
        event_id: the unreadable event.
        sequence: its position in the world's append order (the ``seq`` column).
        reason: what was wrong with it, in one line.
        read_before: the events of the same read that came before it, decoded (so a
            reader can show them and go on with ``events.list(after_event_id=event_id)``).
    """

    def __init__(
        self,
        message: str,
        *,
        run_id: str | None = None,
        event_id: str | None = None,
        sequence: int | None = None,
        reason: str = "",
        read_before: Sequence[Event] = (),
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.event_id = event_id
        self.sequence = sequence
        self.reason = reason
        self.read_before = list(read_before)
