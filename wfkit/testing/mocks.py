"""Step mocks: replace a step's body for one test.

The replacement runs where the step would (a worker, as a step attempt), so its calls
are recorded in the log as ordinary steps (``step_created``, ``step_completed``),
retries and all; only the body differs.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wfkit.runtime.loading import registry
from wfkit.runtime.loading.resolve import step_id_for

__all__ = ["StepCall", "StepMock", "resolve_step_id"]


@dataclass(frozen=True)
class StepCall:
    """One call of a mocked step."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass(eq=False)
class StepMock:
    """A replacement step body that records its calls.

    Attributes:
        step_id: the mocked step's ID.
        replacement: what runs instead (sync or async; takes the step's arguments).
        calls: each call's arguments, in order (attempts included).
    """

    step_id: str
    replacement: Callable[..., Any]
    calls: list[StepCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def call_count(self) -> int:
        """How often the step body ran."""
        return len(self.calls)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.calls.append(StepCall(args, dict(kwargs)))
        return self.replacement(*args, **kwargs)


def resolve_step_id(step: Callable[..., Any] | str) -> str:
    """The step ID of a step function (source, client twin or proxy) or an ID string.

    Raises:
        ValueError: ``step`` is neither a step of the loaded build nor a registered ID.
    """
    if isinstance(step, str):
        if not registry.has_step(step):
            raise ValueError(
                f"{step!r} is not a registered step ID (IDs look like 'step//./path//name'); "
                "pass the step function instead"
            )
        return step
    if not callable(step):
        raise ValueError(f"mock_step() needs a step function or ID, got {type(step).__name__}")
    found = step_id_for(step)
    if found is None:
        name = getattr(step, "__qualname__", repr(step))
        module = getattr(step, "__module__", "?")
        raise ValueError(f"{module}.{name} is not a step in the loaded build (no 'use step'?)")
    return found


def check_replacement(replacement: object) -> Callable[..., Any]:
    """``replacement`` if it is callable (a function, lambda, async function)."""
    if not callable(replacement):
        raise ValueError(
            f"a step mock must be callable (a function or lambda), got {type(replacement).__name__}"
        )
    if inspect.isasyncgenfunction(replacement):
        raise ValueError("a step mock cannot be an async generator")
    return replacement
