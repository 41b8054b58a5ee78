"""Helpers that generated modules call. The only module of ours generated code imports.

Generated code uses it as ``import wfkit.runtime.gen as __wfkit__`` (see ARCHITECTURE.md §1).
Everything here is cheap at import time: a worker imports hundreds of these modules.
"""

from __future__ import annotations

import datetime as _dt
import os as _os
import random as _random
import secrets as _secrets
import time as _time
import uuid as _uuid
from collections.abc import Callable
from typing import Any

from wfkit.runtime.context import current_workflow
from wfkit.runtime.errors import WorkflowCalledDirectlyError
from wfkit.runtime.loading import registry

MODE = "client"
"""Overwritten by each generated module (``__wfkit__.MODE = "workflow"``) right before
its registrations run; ``register_class`` reads it."""


def register_workflow(workflow_id: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register a kept workflow body (workflow mode)."""
    _tag(fn, "workflow_id", workflow_id)
    registry.register_workflow(workflow_id, fn)
    return fn


def register_step(step_id: str, fn: Callable[..., Any], method: bool = False) -> Callable[..., Any]:
    """Register a kept step body (step mode)."""
    _tag(fn, "step_id", step_id)
    registry.register_step(step_id, fn, method=method)
    return fn


def register_step_factory(step_id: str, factory: Callable[..., Callable[..., Any]]) -> None:
    """Register a nested step: ``factory(**closure_values)`` builds the step function."""
    _tag(factory, "step_id", step_id)
    registry.register_step_factory(step_id, factory)


def tag_workflow(workflow_id: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a replaced workflow stub with its ID so ``start(fn)`` can find it."""
    _tag(fn, "workflow_id", workflow_id)
    return fn


def tag_step(step_id: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a kept step body (client mode) with its ID."""
    _tag(fn, "step_id", step_id)
    return fn


def workflow_called_directly(workflow_id: str) -> None:
    """The body of a workflow in step and client modes: always raises."""
    name = workflow_id.rsplit("//", 1)[-1]
    raise WorkflowCalledDirectlyError(
        f"The workflow {name}() was called directly. Workflows run durably: "
        f"use `await wfkit.start({name}, ...)` (or `wfkit.run({name}, ...)` in scripts)."
    )


def register_class(class_id: str, cls: type) -> type:
    """Register a class that crosses durable boundaries, for the importing module's mode."""
    _tag(cls, "__wfkit_class_id__", class_id)
    registry.register_class(MODE, class_id, cls)
    return cls


def _tag(obj: Any, attr: str, value: str) -> None:
    obj = getattr(obj, "__func__", obj)  # a classmethod registers as a bound method
    try:
        setattr(obj, attr, value)
    except (AttributeError, TypeError):  # builtins, slots: the registry still knows it
        pass


class StepProxy:
    """What a step ``def`` becomes in workflow mode.

    Called inside a workflow replay, it records a durable step call at once and
    returns the future of the step's result (``wfkit.runtime.replay.calls.StepFuture``),
    which works wherever asyncio takes a coroutine: ``await``, ``gather``,
    ``create_task``, ``TaskGroup.create_task``, ``wait_for``, ``shield``, ``wait``.
    Called anywhere else, it runs the registered step function directly, as calling
    a step outside a workflow should.
    """

    def __init__(
        self,
        step_id: str,
        name: str,
        closure: Callable[[], dict[str, Any]] | None = None,
        method: bool = False,
        this: Any = None,
    ) -> None:
        self.step_id = step_id
        self.__name__ = name.rsplit(".", 1)[-1].rsplit("/", 1)[-1]
        self.__qualname__ = name
        self._closure = closure
        self._method = method
        self._this = this

    def __repr__(self) -> str:
        return f"<step {self.step_id}>"

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if not self._method or instance is None:
            return self
        bound = StepProxy(self.step_id, self.__qualname__, self._closure, True, instance)
        bound.__dict__.update({k: v for k, v in self.__dict__.items() if k == "max_retries"})
        return bound

    def closure_values(self) -> dict[str, Any] | None:
        return self._closure() if self._closure is not None else None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ctx = current_workflow.get()
        if ctx is not None:
            return ctx.call_step(
                self.step_id, args, kwargs, closure=self.closure_values(), this=self._this
            )
        entry = registry.get_step(self.step_id)
        fn = entry.resolve(self.closure_values())
        if entry.method:
            return fn(self._this, *args, **kwargs)
        return fn(*args, **kwargs)


def step_proxy(
    step_id: str,
    name: str,
    closure: Callable[[], dict[str, Any]] | None = None,
    method: bool = False,
) -> StepProxy:
    """The value that replaces a step ``def`` in workflow mode."""
    return StepProxy(step_id, name, closure, method)


# --- deterministic twins -------------------------------------------------------------


def _clock() -> _dt.datetime:
    ctx = current_workflow.get()
    assert ctx is not None
    return ctx.now()


def _rng() -> _random.Random:
    ctx = current_workflow.get()
    assert ctx is not None
    return ctx.random


def _now(tz: _dt.tzinfo | None = None) -> _dt.datetime:
    aware = _clock()
    if tz is not None:
        return aware.astimezone(tz)
    return aware.astimezone().replace(tzinfo=None)


def _uuid1(node: int | None = None, clock_seq: int | None = None) -> _uuid.UUID:
    ctx = current_workflow.get()
    assert ctx is not None
    return ctx.uuid4()


def _uuid4() -> _uuid.UUID:
    ctx = current_workflow.get()
    assert ctx is not None
    return ctx.uuid4()


def _token_bytes(nbytes: int | None = None) -> bytes:
    return _rng().randbytes(32 if nbytes is None else nbytes)


def _token_urlsafe(nbytes: int | None = None) -> str:
    import base64

    return base64.urlsafe_b64encode(_token_bytes(nbytes)).rstrip(b"=").decode("ascii")


_TWINS: dict[str, Callable[..., Any]] = {
    "time.time": lambda: _clock().timestamp(),
    "time.time_ns": lambda: int(_clock().timestamp() * 1_000_000_000),
    "time.monotonic": lambda: _clock().timestamp(),
    "time.monotonic_ns": lambda: int(_clock().timestamp() * 1_000_000_000),
    "time.perf_counter": lambda: _clock().timestamp(),
    "time.perf_counter_ns": lambda: int(_clock().timestamp() * 1_000_000_000),
    "datetime.datetime.now": _now,
    "datetime.datetime.utcnow": lambda: _clock().astimezone(_dt.UTC).replace(tzinfo=None),
    "datetime.datetime.today": lambda: _now(),
    "datetime.date.today": lambda: _now().date(),
    "uuid.uuid1": _uuid1,
    "uuid.uuid4": _uuid4,
    "os.urandom": lambda n: _rng().randbytes(n),
    "secrets.token_bytes": _token_bytes,
    "secrets.token_hex": lambda nbytes=None: _token_bytes(nbytes).hex(),
    "secrets.token_urlsafe": _token_urlsafe,
    "secrets.choice": lambda seq: _rng().choice(seq),
    "secrets.randbelow": lambda n: _rng().randrange(n),
    "secrets.randbits": lambda k: _rng().getrandbits(k),
}

_REAL_MODULES: dict[str, Any] = {
    "time": _time,
    "datetime.datetime": _dt.datetime,
    "datetime.date": _dt.date,
    "uuid": _uuid,
    "os": _os,
    "secrets": _secrets,
    "random": _random,
}


def _real(name: str) -> Callable[..., Any]:
    owner, _, attr = name.rpartition(".")
    target = _REAL_MODULES.get(owner)
    if target is None:
        raise AttributeError(f"wfkit has no deterministic twin for {name}")
    fn: Callable[..., Any] = getattr(target, attr)
    return fn


def deterministic(name: str) -> Callable[..., Any]:
    """The replay-safe twin of a non-deterministic function (e.g. ``"time.time"``).

    Inside a workflow replay it reads the workflow clock and the run-seeded random
    generator, so every replay sees the same values; elsewhere it is the real function.
    """
    if current_workflow.get() is None:
        return _real(name)
    twin = _TWINS.get(name)
    if twin is not None:
        return twin
    if name.startswith("random."):
        fn: Callable[..., Any] = getattr(_rng(), name.partition(".")[2])
        return fn
    return _real(name)
