"""What workflow code calls: durable ``sleep``, hooks, and run metadata.

These functions run inside a workflow replay (``wfkit.runtime.replay.session.ReplaySession``)
and record durable calls on it; ``wfkit`` re-exports them. Outside a workflow
they raise ``NotInWorkflowError`` (except ``get_workflow_metadata()``, which
also works in steps, and ``TypedHook.resume()``, which is for clients).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from wfkit.runtime.context import StepMetadata, WorkflowMetadata, current_step, current_workflow
from wfkit.runtime.errors import HookDisposedError, NotInWorkflowError
from wfkit.runtime.replay.calls import DISPOSED, CallSite, HookCall, user_call_site
from wfkit.runtime.replay.session import ReplaySession

if TYPE_CHECKING:
    from wfkit.runtime.api.hook_client import HookInfo
    from wfkit.worlds.base import World

__all__ = [
    "Hook",
    "HookDisposedError",
    "TypedHook",
    "create_hook",
    "define_hook",
    "get_step_metadata",
    "get_workflow_metadata",
    "parse_duration",
    "patched",
    "sleep",
]

T = TypeVar("T")
M = TypeVar("M")

_UNIT_SECONDS: dict[str, float] = {
    "ms": 0.001,
    "msec": 0.001,
    "msecs": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)")


def _session(what: str) -> ReplaySession:
    ctx = current_workflow.get()
    if not isinstance(ctx, ReplaySession):
        raise NotInWorkflowError(
            f"{what} can only be called inside a workflow function "
            '(an async def marked "use workflow"), not in a step or in client code.'
        )
    return ctx


def patched(patch_id: str) -> bool:
    """Whether this run takes the new branch of a code change (Temporal's ``patched``).

    True for a run that reaches this call on code with the patch, False when
    replaying a log recorded by code before it. The first True is recorded in the
    log (a ``patch_marked`` event), so every later replay of the run agrees, and a
    run's answer for one id never changes. Once no run recorded before the patch
    remains, the call and the old branch can be deleted.

    Args:
        patch_id: names the change; unique per change within a workflow.

    Returns:
        Whether to run the new code.

    Raises:
        NotInWorkflowError: called outside a workflow.
        ValueError: ``patch_id`` is not a non-empty string.
    """
    return _session("patched()").patched(patch_id)


def parse_duration(duration: str | int | float | timedelta) -> timedelta:
    """Read a duration: ``"10s"``, ``"1.5m"``, ``"2h"``, ``"1d"``, ``"500ms"``,
    ``"1h30m"``, ``"2 hours"``, a bare number string or an int/float (seconds), or a timedelta.

    Raises:
        ValueError: a malformed string or a negative duration.
        TypeError: another type.
    """
    if isinstance(duration, timedelta):
        result = duration
    elif isinstance(duration, bool):
        raise TypeError("a duration must be a string, a number of seconds or a timedelta")
    elif isinstance(duration, int | float):
        if duration != duration:  # NaN
            raise ValueError("a duration cannot be NaN")
        result = timedelta(seconds=duration)
    elif isinstance(duration, str):
        result = _parse_duration_string(duration)
    else:
        raise TypeError(
            f"a duration must be a string, a number of seconds or a timedelta, "
            f"got {type(duration).__name__}"
        )
    if result < timedelta(0):
        raise ValueError(f"a duration cannot be negative: {duration!r}")
    return result


def _parse_duration_string(text: str) -> timedelta:
    stripped = text.strip()
    if not stripped:
        raise ValueError("an empty string is not a duration")
    seconds = 0.0
    position = 0
    while position < len(stripped):
        match = _DURATION_PART.match(stripped, position)
        if match is None or match.end() == position:
            raise ValueError(_bad_duration(text))
        number, unit = match.groups()
        if not unit and (position != 0 or match.end() != len(stripped)):
            raise ValueError(_bad_duration(text))  # a bare number only stands alone
        factor = _UNIT_SECONDS.get(unit.lower()) if unit else 1.0
        if factor is None:
            raise ValueError(_bad_duration(text))
        seconds += float(number) * factor
        position = match.end()
        while position < len(stripped) and stripped[position] in " ,":
            position += 1
    return timedelta(seconds=seconds)


def _bad_duration(text: str) -> str:
    return (
        f"not a duration: {text!r} (use e.g. '10s', '1.5m', '2h', '1d', '500ms', '1h30m', "
        "or a number of seconds)"
    )


def sleep(duration: str | int | float | timedelta | datetime) -> Coroutine[Any, Any, None]:
    """Pause the workflow durably: no worker is busy meanwhile, and a restart keeps the wait.

    Await the result (``await sleep("1h")``), or hand it to ``gather`` / ``create_task``
    like any coroutine. The wait is recorded with the line that called ``sleep`` so a
    replay divergence can point at it.

    Args:
        duration: ``"10s"``-style string, seconds (int/float), a timedelta, or an
            aware datetime to sleep until.

    Returns:
        A coroutine that finishes when the workflow clock reaches the wake-up time.

    Raises (when awaited):
        NotInWorkflowError: called outside a workflow.
        ValueError: a naive datetime, a negative or malformed duration.
    """
    # Found now: once the coroutine runs inside a task, the caller's frame is gone.
    return _sleep(duration, user_call_site())


async def _sleep(duration: str | int | float | timedelta | datetime, site: CallSite | None) -> None:
    session = _session("sleep()")
    if isinstance(duration, datetime):
        if duration.tzinfo is None or duration.utcoffset() is None:
            raise ValueError(
                "sleep() needs an aware datetime (with a timezone), e.g. datetime(..., tzinfo=UTC)"
            )
        resume_at = duration
    else:
        resume_at = session.now() + parse_duration(duration)
    await session.sleep_until(resume_at, site=site)


class Hook(Generic[T]):
    """A durable hook: resumed from outside (``resume_hook(token, payload)``) any number of times.

    ``await hook`` gives the next payload; ``async for payload in hook`` gives them
    all until the hook is disposed. ``dispose()`` releases the token; ``with`` and
    ``async with`` dispose on exit.

    Raises (when awaited):
        HookConflictError: another live run holds the token.
        HookDisposedError: awaited after ``dispose()``.
    """

    def __init__(
        self, call: HookCall, session: ReplaySession, convert: Callable[[Any], T] | None = None
    ) -> None:
        self._call = call
        self._session = session
        self._convert = convert

    @property
    def token(self) -> str:
        return self._call.token

    @property
    def hook_id(self) -> str:
        """The hook's correlation id (``hook_…``)."""
        return self._call.correlation_id

    @property
    def disposed(self) -> bool:
        return self._call.disposed

    def __repr__(self) -> str:
        return f"<Hook token={self.token!r}>"

    def __await__(self) -> Generator[Any, None, T]:
        return self._next(stop=False).__await__()

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        return await self._next(stop=True)

    async def _next(self, *, stop: bool) -> T:
        payload = await self._call.next_payload()
        if payload is DISPOSED:
            if stop:
                raise StopAsyncIteration
            raise HookDisposedError(f'Hook "{self.token}" was disposed')
        if self._convert is not None:
            return self._convert(payload)
        result: T = payload
        return result

    def dispose(self) -> None:
        """Release the token now (other runs may then use it); pending awaits end."""
        self._session.dispose_hook(self._call)

    def __enter__(self) -> Hook[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.dispose()

    async def __aenter__(self) -> Hook[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.dispose()


def create_hook(token: str | None = None, metadata: Any = None) -> Hook[Any]:
    """Create a durable hook in the running workflow.

    Args:
        token: the token resumers use; default: a random 24-character url-safe token.
        metadata: any serializable value, stored with the hook (``get_hook_by_token``).

    Raises:
        NotInWorkflowError: called outside a workflow.
        SerializationError: ``metadata`` cannot be serialized.
    """
    return _create_hook(token=token, metadata=metadata)


def _create_hook(
    *,
    token: str | None = None,
    metadata: Any = None,
    is_webhook: bool = False,
    respond_with: Any = None,
    convert: Callable[[Any], Any] | None = None,
    hook_class: type[Hook[Any]] | None = None,
) -> Hook[Any]:
    """``create_hook`` with the webhook options (``create_webhook`` builds on it);
    ``hook_class`` is the ``Hook`` subclass to return (e.g. ``Webhook``)."""
    session = _session("create_hook()")
    call = session.create_hook(token, metadata, is_webhook=is_webhook, respond_with=respond_with)
    return (hook_class or Hook)(call, session, convert)


class TypedHook(Generic[M]):
    """Hooks whose payloads a pydantic model validates (``define_hook(Model)``).

    ``create()`` (in a workflow) gives a ``Hook[M]``, so awaiting it gives an ``M``;
    ``resume()`` / ``resume_sync()`` (in clients) take an ``M`` or a mapping the model
    validates.
    """

    def __init__(self, model: type[M] | None) -> None:
        self.model = model

    def _validate(self, payload: Any) -> M:
        if self.model is None:
            result: M = payload
            return result
        validate: Callable[[Any], M] = self.model.model_validate  # type: ignore[attr-defined]
        return validate(payload)

    def create(self, token: str | None = None, metadata: Any = None) -> Hook[M]:
        """Create the hook in the running workflow; awaited payloads are model instances.

        Raises:
            NotInWorkflowError: called outside a workflow.
            pydantic.ValidationError: (when awaited) a payload the model rejects.
        """
        hook: Hook[M] = _create_hook(token=token, metadata=metadata, convert=self._validate)
        return hook

    def _payload(self, payload: M | Mapping[str, Any]) -> Any:
        """``payload`` validated by the model, as the plain data stored in the log."""
        value: Any = self._validate(payload)
        return value.model_dump() if hasattr(value, "model_dump") else value

    async def resume(
        self, token: str, payload: M | Mapping[str, Any], *, world: World | str | None = None
    ) -> HookInfo:
        """Validate ``payload`` with the model, then resume the hook holding ``token``
        (the world is written in a worker thread).

        Returns:
            The hook that took the payload (``wfkit.HookInfo``).

        Raises:
            pydantic.ValidationError: the payload does not fit the model (nothing is written).
            HookNotFoundError: no live hook holds ``token``.
        """
        info: HookInfo = await _hook_client().resume_hook(
            token, self._payload(payload), world=world
        )
        return info

    def resume_sync(
        self, token: str, payload: M | Mapping[str, Any], *, world: World | str | None = None
    ) -> HookInfo:
        """``resume`` for sync code."""
        info: HookInfo = _hook_client().resume_hook_sync(token, self._payload(payload), world=world)
        return info


def _hook_client() -> Any:
    # Imported late: the client modules pull in the world configuration, which a
    # workflow bundle importing this module never needs.
    return importlib.import_module("wfkit.runtime.api.hook_client")


@overload
def define_hook(model: type[M]) -> TypedHook[M]: ...
@overload
def define_hook(model: None = None) -> TypedHook[Any]: ...
def define_hook(model: type[Any] | None = None) -> TypedHook[Any]:
    """A typed hook definition: ``.create()`` in workflows, ``await .resume()`` in clients.

    Args:
        model: a pydantic model class validating every payload (None: no validation).
    """
    return TypedHook(model)


def get_workflow_metadata() -> WorkflowMetadata:
    """The running workflow's metadata (run id, name, start time, url), in workflows and steps.

    Raises:
        NotInWorkflowError: outside a workflow or a step.
    """
    ctx = current_workflow.get()
    if ctx is not None:
        return ctx.metadata
    step = current_step.get()
    if step is not None:
        return step.workflow
    raise NotInWorkflowError(
        "get_workflow_metadata() can only be called inside a workflow or a step"
    )


def get_step_metadata() -> StepMetadata:
    """The running step's metadata (step id, step name, attempt from 1, first start time).

    Raises:
        NotInWorkflowError: outside a step.
    """
    step = current_step.get()
    if step is None:
        raise NotInWorkflowError("get_step_metadata() can only be called inside a step")
    return step.step
