"""Per-step options, set where ``mypy --strict`` can see them.

``@step_options(max_retries=5)`` on a ``"use step"`` function does what the attribute
form ``charge.max_retries = 5`` (after the def) does, without the attribute a type
checker rejects: it sets ``max_retries`` on the function. The transform keeps a step's
decorators in step mode (whose registered function the executor reads the option
from, ``wfkit.runtime.loading.registry.StepEntry.max_retries``) and in client mode; in
workflow mode the whole def becomes a step proxy, which needs no options.

Alternatives rejected: ``configure_step(fn, max_retries=5)`` after the def (a second
statement to keep next to the def, and in workflow mode it would configure the proxy);
options as keyword arguments of a ``@step`` decorator (the directive string already
marks steps; two markers could disagree).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["step_options"]

F = TypeVar("F", bound=Callable[..., Any])


def step_options(*, max_retries: int | None = None) -> Callable[[F], F]:
    """A decorator setting a step's options; the decorated function keeps its type.

    Args:
        max_retries: retries after a failed attempt (default 3, so 4 attempts; 0: one
            attempt). ``FatalError`` never retries.

    Returns:
        The decorator (it returns the function itself, with the options set).

    Raises:
        ValueError: ``max_retries`` is not a non-negative int.
    """
    if max_retries is not None and (
        isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0
    ):
        raise ValueError(f"step_options(max_retries=...) needs an int >= 0, got {max_retries!r}")

    def set_options(step: F) -> F:
        if max_retries is not None:
            step.max_retries = max_retries  # type: ignore[attr-defined]
        return step

    return set_options
