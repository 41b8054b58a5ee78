"""Registry of workflows, steps and serializable classes by ID, one table set per deployment.

Generated modules fill it when they are imported (see ``wfkit.runtime.gen``); the
loader says which deployment is loading (``loading_into``), so two builds of one
project -- v1 and v2 during a rollout, with the same IDs and different code -- fill
tables of their own. Functions registered outside any load (built-in steps, tests
that register by hand) go to the *default* tables.

Lookups go through a *scope*: the worker activates the scope of the deployment a
message is for (``scope_for`` + ``using_scope``), so a v1 run replays v1's workflow
and runs v1's steps even in a worker that also serves v2. A pinned scope searches its
deployment's tables, then the default ones; the unpinned scope (runs recorded without
a deployment, e.g. by wfkit 0.1.0) searches the shared-prefix deployments newest
first, the default tables, then the other deployments. Without an active scope
(client code, tools) every table is searched, the default ones first.

Alternatives rejected: one process-wide table (the last build loaded would silently
replace another's functions under the same IDs); keying every entry by
``(deployment, id)`` and passing the deployment through the replay, the executor and
the serializer (every caller would change; a context variable reaches the workflow's
own tasks, which copy the context they are created in).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from wfkit.runtime.errors import StepNotRegisteredError, WorkflowNotRegisteredError
from wfkit.runtime.loading.twin_names import PREFIXES, isolated_prefixes

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "Scope",
    "StepEntry",
    "Tables",
    "active_deployment_id",
    "class_id_of",
    "clear",
    "deployment_tables",
    "find_class",
    "forget_deployment",
    "forget_deployments",
    "forget_twins",
    "get_step",
    "get_workflow",
    "has_step",
    "has_twins",
    "has_workflow",
    "loading_into",
    "register_class",
    "register_step",
    "register_step_factory",
    "register_twins",
    "register_workflow",
    "replaced_step",
    "scope_for",
    "twin_tables",
    "twins_generation",
    "using_scope",
]

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


@dataclass(eq=False)
class Tables:
    """What one deployment registered (or, with ``deployment_id`` "", what was
    registered outside any load).

    Attributes:
        deployment_id: the deployment's ID; "" for the default tables.
        isolated: loaded under prefixes of its own (a second build of modules another
            loaded build already provides), with no user modules behind its classes.
        twin_prefixes: the module prefix of its twins, by mode.
    """

    deployment_id: str
    isolated: bool = False
    twin_prefixes: Mapping[str, str] = field(default_factory=lambda: dict(PREFIXES))
    workflows: dict[str, Callable[..., Any]] = field(default_factory=dict)
    steps: dict[str, StepEntry] = field(default_factory=dict)
    classes: dict[tuple[str, str], type] = field(default_factory=dict)
    modules_with_twins: set[str] = field(default_factory=set)


@dataclass(frozen=True, eq=False)
class Scope:
    """The tables a run's code sees, searched in order.

    Attributes:
        deployment_id: the run's deployment; "" for unpinned runs.
        chain: the tables to search, first match wins.
        serial: unique per scope (keys caches of what the scope resolves to).
    """

    deployment_id: str
    chain: tuple[Tables, ...]
    serial: int


_default = Tables("")
_deployments: dict[str, Tables] = {}
"""Every deployment's tables, in load order."""
_class_ids: dict[type, str] = {}
_loading: ContextVar[Tables | None] = ContextVar("wfkit_registry_loading", default=None)
_scope: ContextVar[Scope | None] = ContextVar("wfkit_registry_scope", default=None)
_scopes: dict[tuple[str, str | None], Scope] = {}
_serials = itertools.count(1)
_version = 0
"""Bumped whenever a deployment or a module with twins comes or goes."""


def _changed() -> None:
    global _version
    _version += 1
    _scopes.clear()


# --- tables and scopes ---------------------------------------------------------------------


def deployment_tables(deployment_id: str, *, isolated: bool) -> Tables:
    """The tables of ``deployment_id``, created on first use.

    Args:
        deployment_id: the deployment's ID (``d_…``).
        isolated: whether its twins load under prefixes of their own.
    """
    tables = _deployments.get(deployment_id)
    if tables is None:
        prefixes = isolated_prefixes(deployment_id) if isolated else dict(PREFIXES)
        tables = Tables(deployment_id, isolated=isolated, twin_prefixes=prefixes)
        _deployments[deployment_id] = tables
        _changed()
    return tables


@contextmanager
def loading_into(tables: Tables) -> Iterator[None]:
    """Registrations inside the block go to ``tables`` (the loader, importing a build)."""
    token = _loading.set(tables)
    try:
        yield
    finally:
        _loading.reset(token)


def _newest_first(*, isolated: bool) -> list[Tables]:
    return [t for t in reversed(_deployments.values()) if t.isolated is isolated]


def scope_for(deployment_id: str, *, code_of: str | None = None) -> Scope | None:
    """The scope of runs pinned to ``deployment_id`` ("" for unpinned runs).

    Args:
        deployment_id: the runs' deployment.
        code_of: run them on this (loaded) deployment's code instead of their own: a
            worker that *adopts* another deployment's runs (its own newest code runs
            them; ``wfkit.patched()`` keeps their replays on the old branch).

    Returns:
        The scope, or None when the deployment whose code runs is not loaded here.
    """
    key = (deployment_id, code_of)
    scope = _scopes.get(key)
    if scope is not None:
        return scope
    code = code_of or deployment_id
    if code:
        tables = _deployments.get(code)
        if tables is None:
            return None
        chain: tuple[Tables, ...] = (tables, _default)
    else:
        chain = (*_newest_first(isolated=False), _default, *_newest_first(isolated=True))
    scope = Scope(deployment_id, chain, next(_serials))
    _scopes[key] = scope
    return scope


@contextmanager
def using_scope(scope: Scope) -> Iterator[None]:
    """Lookups inside the block (and in tasks created there) go through ``scope``."""
    token: Token[Scope | None] = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)


def active_deployment_id() -> str | None:
    """The deployment of the run whose code is running here ("" when it is unpinned), or
    None outside any run's scope (client code)."""
    scope = _scope.get()
    return None if scope is None else scope.deployment_id


def _chain() -> tuple[Tables, ...]:
    scope = _scope.get()
    if scope is not None:
        return scope.chain
    return (_default, *_newest_first(isolated=False), *_newest_first(isolated=True))


def _target() -> Tables:
    return _loading.get() or _default


# --- workflows and steps ---------------------------------------------------------------------


def register_workflow(workflow_id: str, fn: Callable[..., Any]) -> None:
    _target().workflows[workflow_id] = fn


def get_workflow(workflow_id: str) -> Callable[..., Any]:
    """The workflow function registered under ``workflow_id`` (in the active scope).

    Raises:
        WorkflowNotRegisteredError: the ID is not in the loaded build.
    """
    for tables in _chain():
        fn = tables.workflows.get(workflow_id)
        if fn is not None:
            return fn
    raise WorkflowNotRegisteredError(
        f'Workflow "{workflow_id}" is not registered: {_what_to_do(workflow_id)}'
    )


def has_workflow(workflow_id: str) -> bool:
    """Whether a workflow is registered under ``workflow_id`` (in the active scope)."""
    return any(workflow_id in tables.workflows for tables in _chain())


def register_step(step_id: str, fn: Callable[..., Any], *, method: bool = False) -> None:
    _target().steps[step_id] = StepEntry(step_id, fn=fn, method=method)


def register_step_factory(step_id: str, factory: Callable[..., Callable[..., Any]]) -> None:
    _target().steps[step_id] = StepEntry(step_id, factory=factory)


def get_step(step_id: str) -> StepEntry:
    """The step registered under ``step_id`` (in the active scope).

    Raises:
        StepNotRegisteredError: the ID is not in the loaded build.
    """
    for tables in _chain():
        entry = tables.steps.get(step_id)
        if entry is not None:
            return entry
    raise StepNotRegisteredError(f'Step "{step_id}" is not registered: {_what_to_do(step_id)}')


def _what_to_do(entry_id: str) -> str:
    """The advice of a "not registered" error: restart when the build on disk has the ID
    now (rebuilt after this process loaded it), else rebuild."""
    from wfkit.runtime.loading.loader import rebuilt_build_listing  # it imports this module

    try:
        rebuilt = rebuilt_build_listing(entry_id)
    except Exception:  # the advice must never hide the error it advises on
        rebuilt = None
    if rebuilt is not None:
        return (
            f"the build at {rebuilt} lists it now, but this process loaded that build before "
            "it was rebuilt: restart the worker (`wfkit dev` restarts it on every build)."
        )
    return "is it in the build's manifest.json? Rebuild with `python -m wfbuild build`."


@contextmanager
def replaced_step(step_id: str, fn: Callable[..., Any]) -> Iterator[None]:
    """Run ``fn`` instead of the body of the step ``step_id`` inside the block, in every
    deployment that registers it (the testing kit's step mocks); restored after.

    ``fn`` takes the step's arguments (a nested step's closure values are dropped); it
    keeps the step's ``max_retries`` unless it sets its own.

    Raises:
        StepNotRegisteredError: no loaded build registers ``step_id``.
    """
    tables = [t for t in (_default, *_deployments.values()) if step_id in t.steps]
    if not tables:
        raise StepNotRegisteredError(
            f'Step "{step_id}" is not registered: is it in the build\'s manifest.json?'
        )
    originals = [(t, t.steps[step_id]) for t in tables]
    for table, original in originals:
        body = fn if hasattr(fn, "max_retries") else _keeping_retries(fn, original.max_retries)
        table.steps[step_id] = StepEntry(step_id, fn=body, method=original.method)
    try:
        yield
    finally:
        for table, original in originals:
            table.steps[step_id] = original


def _keeping_retries(fn: Callable[..., Any], max_retries: int) -> Callable[..., Any]:
    def body(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    body.max_retries = max_retries  # type: ignore[attr-defined]
    return body


def has_step(step_id: str) -> bool:
    """Whether a step is registered under ``step_id`` (in the active scope)."""
    return any(step_id in tables.steps for tables in _chain())


# --- classes -------------------------------------------------------------------------------


def register_class(mode: str, class_id: str, cls: type) -> None:
    _target().classes[(mode, class_id)] = cls
    _class_ids[cls] = class_id


def class_id_of(cls: type) -> str | None:
    """The manifest ID of a registered class, or None."""
    return _class_ids.get(cls)


def find_class(class_id: str, mode: str) -> type | None:
    """The class registered under ``class_id`` for ``mode``, else for any mode (in the
    active scope)."""
    chain = _chain()
    for wanted in (mode, "client", "step", "workflow"):
        for tables in chain:
            cls = tables.classes.get((wanted, class_id))
            if cls is not None:
                return cls
    return None


# --- modules with twins --------------------------------------------------------------------


def register_twins(module: str) -> None:
    """Note that the user module ``module`` has generated workflow and step twins loaded
    (for the deployment being loaded)."""
    target = _target()
    if module not in target.modules_with_twins:
        target.modules_with_twins.add(module)
        _changed()


def twin_tables(module: str) -> Tables | None:
    """The first tables in the active scope whose deployment has twins of ``module``."""
    for tables in _chain():
        if module in tables.modules_with_twins:
            return tables
    return None


def has_twins(module: str) -> bool:
    """Whether the user module ``module`` has generated twins loaded (in the active scope)."""
    return twin_tables(module) is not None


def twins_generation() -> int:
    """A number that changes whenever what ``twin_tables`` answers may change: another
    deployment or module with twins, or another active scope."""
    scope = _scope.get()
    return (_version << 20) | (scope.serial if scope is not None else 0)


def forget_twins() -> None:
    """Forget which modules have twins loaded (the loader unloaded them)."""
    for tables in (_default, *_deployments.values()):
        tables.modules_with_twins.clear()
    _changed()


def forget_deployment(deployment_id: str) -> None:
    """Drop one deployment's tables (a load of it failed half-way)."""
    if _deployments.pop(deployment_id, None) is not None:
        _changed()


def forget_deployments() -> None:
    """Drop every deployment's tables (the loader unloaded their builds)."""
    _deployments.clear()
    forget_twins()


def clear() -> None:
    """Forget everything (tests)."""
    _default.workflows.clear()
    _default.steps.clear()
    _default.classes.clear()
    _class_ids.clear()
    forget_deployments()
