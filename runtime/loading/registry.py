"""Process-wide registry of workflows, steps and serializable classes by ID, and of the
user modules whose generated twins are loaded.

Generated modules fill it when they are imported (see ``wfkit.runtime.gen``), the
loader notes which modules have twins; the replay engine, the step executor and the
serializer read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wfkit.runtime.errors import StepNotRegisteredError, WorkflowNotRegisteredError

DEFAULT_MAX_RETRIES = 3


@dataclass
class StepEntry:
    """A registered step: a plain function, or a factory taking closure values."""

    step_id: str
    fn: Callable[..., Any] | None = None
    factory: Callable[..., Callable[..., Any]] | None = None
    method: bool = False

    def resolve(self, closure: dict[str, Any] | None = None) -> Callable[..., Any]:
        """The callable to run, built from ``closure`` for nested steps."""
        if self.factory is not None:
            return self.factory(**(closure or {}))
        assert self.fn is not None
        return self.fn

    @property
    def max_retries(self) -> int:
        target: Any = self.fn if self.fn is not None else self.factory
        value = getattr(target, "max_retries", DEFAULT_MAX_RETRIES)
        return int(value)


_workflows: dict[str, Callable[..., Any]] = {}
_steps: dict[str, StepEntry] = {}
_classes: dict[tuple[str, str], type] = {}
_class_ids: dict[type, str] = {}
_modules_with_twins: set[str] = set()
_twins_generation = 0
"""Bumped whenever ``_modules_with_twins`` changes, so caches keyed on it re-resolve."""


def register_workflow(workflow_id: str, fn: Callable[..., Any]) -> None:
    _workflows[workflow_id] = fn


def get_workflow(workflow_id: str) -> Callable[..., Any]:
    """The workflow function registered under ``workflow_id``.

    Raises:
        WorkflowNotRegisteredError: the ID is not in the loaded build.
    """
    try:
        return _workflows[workflow_id]
    except KeyError:
        raise WorkflowNotRegisteredError(
            f'Workflow "{workflow_id}" is not registered: is it in the build\'s manifest.json? '
            "Rebuild with `python -m wfbuild build`."
        ) from None


def has_workflow(workflow_id: str) -> bool:
    """Whether a workflow is registered under ``workflow_id``."""
    return workflow_id in _workflows


def register_step(step_id: str, fn: Callable[..., Any], *, method: bool = False) -> None:
    _steps[step_id] = StepEntry(step_id, fn=fn, method=method)


def register_step_factory(step_id: str, factory: Callable[..., Callable[..., Any]]) -> None:
    _steps[step_id] = StepEntry(step_id, factory=factory)


def get_step(step_id: str) -> StepEntry:
    """The step registered under ``step_id``.

    Raises:
        StepNotRegisteredError: the ID is not in the loaded build.
    """
    try:
        return _steps[step_id]
    except KeyError:
        raise StepNotRegisteredError(
            f'Step "{step_id}" is not registered: is it in the build\'s manifest.json? '
            "Rebuild with `python -m wfbuild build`."
        ) from None


def has_step(step_id: str) -> bool:
    """Whether a step is registered under ``step_id``."""
    return step_id in _steps


def register_class(mode: str, class_id: str, cls: type) -> None:
    _classes[(mode, class_id)] = cls
    _class_ids[cls] = class_id


def class_id_of(cls: type) -> str | None:
    """The manifest ID of a registered class, or None."""
    return _class_ids.get(cls)


def find_class(class_id: str, mode: str) -> type | None:
    """The class registered under ``class_id`` for ``mode``, else for any mode."""
    cls = _classes.get((mode, class_id))
    if cls is not None:
        return cls
    for fallback in ("client", "step", "workflow"):
        cls = _classes.get((fallback, class_id))
        if cls is not None:
            return cls
    return None


def register_twins(module: str) -> None:
    """Note that the user module ``module`` has generated workflow and step twins loaded."""
    global _twins_generation
    if module not in _modules_with_twins:
        _modules_with_twins.add(module)
        _twins_generation += 1


def has_twins(module: str) -> bool:
    """Whether the user module ``module`` has generated twins loaded in this process."""
    return module in _modules_with_twins


def twins_generation() -> int:
    """A number that changes whenever the set of modules with twins changes."""
    return _twins_generation


def forget_twins() -> None:
    """Forget which modules have twins loaded (the loader unloaded them)."""
    global _twins_generation
    _modules_with_twins.clear()
    _twins_generation += 1


def clear() -> None:
    """Forget everything (tests)."""
    _workflows.clear()
    _steps.clear()
    _classes.clear()
    _class_ids.clear()
    forget_twins()
