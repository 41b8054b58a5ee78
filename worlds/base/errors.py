"""The errors a world raises; their tree is drawn in the ``wfkit.worlds.base`` package
docstring (``worlds/base/__init__.py``)."""

from __future__ import annotations


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


class SchemaVersionError(WorldError):
    """A store this code cannot open: written by a newer wfkit, or recording no valid
    schema version. Nothing was changed."""


class InvalidEventError(WorldError, ValueError):
    """An event request that is malformed (a missing correlation id or data field).

    Nothing was written."""


class CorruptedLogError(WorldError):
    """A stored event log that the lifecycle rules cannot fold."""
