"""Worker logs: each moment an operator must see is a record under ``wfkit.*`` naming the
run (and step) in its message and in its ``extra`` fields."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest

from tests.observability import workflows
from wfkit.runtime.api.client import resume_hook, start
from wfkit.runtime.engine.worker import Worker, heal
from wfkit.runtime.observability.logs import JsonFormatter, configure_logging, log_fields
from wfkit.worlds.base import WorldUnavailableError
from wfkit.worlds.memory import MemoryWorld


def _run(coro: Any, timeout: float = 30) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def _worker(world: MemoryWorld, **options: Any) -> Worker:
    return Worker(world=world, poll_interval=0.01, sweep_interval=0, **options)


async def _run_to_end(world: MemoryWorld, workflow: str, *args: Any, **options: Any) -> str:
    run = await start(workflow, *args, world=world)
    await _worker(world, **options).run_until_complete(run.run_id, timeout=10)
    return run.run_id


def _about(caplog: pytest.LogCaptureFixture, run_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "run_id", None) == run_id]


@pytest.fixture(autouse=True)
def _wfkit_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wfkit")


def test_a_retry_is_a_warning_with_the_error_and_the_ids(caplog: pytest.LogCaptureFixture) -> None:
    world = MemoryWorld()
    run = _run(start(workflows.RETRIES_THEN_FAILS, world=world))
    _run(_worker(world).run_until_complete(run.run_id, timeout=10))
    (step,) = world.steps.list(run.run_id)

    (retry,) = [r for r in _about(caplog, run.run_id) if r.levelno == logging.WARNING]
    assert retry.name == "wfkit.executor"
    assert (retry.step_id, retry.attempt, retry.step_name) == (  # type: ignore[attr-defined]
        step.step_id,
        1,
        step.step_name,
    )
    assert retry.error_type == "builtins.ValueError"  # type: ignore[attr-defined]
    message = retry.getMessage()
    assert run.run_id in message and step.step_id in message
    assert "attempt 1 and will retry at" in message and "ValueError: no luck" in message


def test_a_step_out_of_retries_and_its_run_failing_are_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = MemoryWorld()
    run_id = _run(_run_to_end(world, workflows.RETRIES_THEN_FAILS))
    (step,) = world.steps.list(run_id)
    errors = [r for r in _about(caplog, run_id) if r.levelno == logging.ERROR]
    step_failed, run_failed = errors
    assert step_failed.name == "wfkit.executor"
    assert (step_failed.step_id, step_failed.attempt) == (step.step_id, 2)  # type: ignore[attr-defined]
    assert step_failed.exc_info is not None and isinstance(step_failed.exc_info[1], ValueError)
    assert f"step {step.step_id}" in step_failed.getMessage()
    assert "failed on attempt 2: ValueError: no luck" in step_failed.getMessage()

    assert run_failed.name == "wfkit.orchestrator"
    assert run_failed.error_code == "USER_ERROR"  # type: ignore[attr-defined]
    assert run_failed.getMessage().startswith(
        f"run {run_id} ({workflows.RETRIES_THEN_FAILS}) failed"
    )
    assert "ValueError: no luck" in run_failed.getMessage()


def test_a_fatal_step_is_logged_once_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    world = MemoryWorld()
    run_id = _run(_run_to_end(world, workflows.FATAL))
    records = _about(caplog, run_id)
    assert not [r for r in records if r.levelno == logging.WARNING]  # a FatalError never retries
    step_failed = [r for r in records if r.name == "wfkit.executor"]
    assert [r.getMessage().split(": ", 1)[1] for r in step_failed] == ["FatalError: card declined"]


def test_an_unregistered_workflow_fails_its_run_with_a_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = MemoryWorld()
    run_id = _run(_run_to_end(world, "workflow//./nowhere//ghost"))
    (record,) = [r for r in _about(caplog, run_id) if r.levelno == logging.ERROR]
    assert record.error_type == "wfkit.runtime.errors.WorkflowNotRegisteredError"  # type: ignore[attr-defined]
    assert record.error_code == "RUNTIME_ERROR"  # type: ignore[attr-defined]
    assert 'Workflow "workflow//./nowhere//ghost" is not registered' in record.getMessage()
    assert world.runs.get(run_id).status == "failed"


def test_a_replay_divergence_says_the_code_changed(caplog: pytest.LogCaptureFixture) -> None:
    world = MemoryWorld()

    async def scenario() -> str:
        run = await start(workflows.CHANGING, "deploy-1", world=world)
        await _worker(world).drain(timeout=10)  # v1 ran `record`, waits on the hook
        workflows.deploy_version(2)
        await resume_hook("deploy-1", {}, world=world)
        await _worker(world).run_until_complete(run.run_id, timeout=10)  # a new process
        return run.run_id

    try:
        run_id = _run(scenario())
    finally:
        workflows.deploy_version(1)
    (record,) = [r for r in _about(caplog, run_id) if r.levelno == logging.ERROR]
    assert record.error_code == "REPLAY_DIVERGENCE"  # type: ignore[attr-defined]
    message = record.getMessage()
    assert message.startswith(f"run {run_id} ({workflows.CHANGING}) failed with REPLAY_DIVERGENCE")
    assert "code changed since the run started" in message and "record" in message


def test_a_lapsed_lease_is_reported_with_the_step(caplog: pytest.LogCaptureFixture) -> None:
    """A step that blocks the event loop past the lease: the queue may hand its message
    to another worker meanwhile, so the worker says so, naming run and step."""
    world = MemoryWorld()
    run_id = _run(
        _run_to_end(world, workflows.BLOCKING, 0.5, inline_steps=False, lease_seconds=0.2)
    )
    (step,) = world.steps.list(run_id)
    lapses = [r for r in _about(caplog, run_id) if "lost the lease" in r.getMessage()]
    assert lapses, [r.getMessage() for r in caplog.records]
    lapse = lapses[0]
    assert (lapse.name, lapse.levelno) == ("wfkit.worker", logging.WARNING)
    assert lapse.step_id == step.step_id  # type: ignore[attr-defined]
    assert f"run {run_id}, step {step.step_id}" in lapse.getMessage()
    assert lapse.unrenewed_seconds > 0.2  # type: ignore[attr-defined]


def test_a_lease_lost_to_failed_renewals_says_why(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refused the renewals (down, restarting): the loop was not blocked,
    and the warning says what did happen."""
    world = MemoryWorld()

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise WorldUnavailableError("the database is restarting")

    monkeypatch.setattr(world.queue, "extend_lease", refuse)
    run_id = _run(_run_to_end(world, workflows.NAPPING, 0.5, inline_steps=False, lease_seconds=0.2))
    lapses = [r.getMessage() for r in _about(caplog, run_id) if "lost the lease" in r.getMessage()]
    assert lapses, [r.getMessage() for r in caplog.records]
    for lapse in lapses:
        assert "its renewal failed: the database is restarting" in lapse
        assert "event loop blocked" not in lapse


def test_an_unavailable_world_is_one_line_per_message_not_a_traceback(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = MemoryWorld()
    writes = {
        "create_batch": world.events.create_batch,
        "create_batches": world.events.create_batches,
    }
    down = [True]

    def flaky(name: str) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            if down[0]:
                down[0] = False
                raise WorldUnavailableError(
                    "Postgres unavailable: the server closed the connection"
                )
            return writes[name](*args, **kwargs)

        return write

    run = _run(start(workflows.CHILD, 1, world=world))
    for name in writes:
        monkeypatch.setattr(world.events, name, flaky(name))
    _run(_worker(world).run_until_complete(run.run_id, timeout=10))
    assert world.runs.get(run.run_id).status == "completed"  # redelivered, then done
    (failed,) = [r for r in _about(caplog, run.run_id) if "redelivered later" in r.getMessage()]
    assert (failed.levelno, failed.exc_info) == (logging.WARNING, None)
    assert "Postgres unavailable: the server closed the connection" in failed.getMessage()


def test_no_lease_is_reported_lost_when_the_worker_keeps_renewing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = MemoryWorld()
    _run(_run_to_end(world, workflows.RETRIES_THEN_FAILS, lease_seconds=0.2))
    assert not [r for r in caplog.records if "lost the lease" in r.getMessage()]


def test_the_sweep_names_each_run_it_re_enqueues(caplog: pytest.LogCaptureFixture) -> None:
    world = MemoryWorld()
    lost = _run(start(workflows.CHILD, 1, world=world))
    waiting = _run(start(workflows.WAITS_ON_HOOK, "sweep-hook", world=world))
    world.queue.delete_messages(lost.run_id)  # its message was lost
    _run(_worker(world).drain(timeout=10))  # `waiting` now waits on its hook, no message
    caplog.clear()

    assert heal(world) == 2
    (lost_record,) = _about(caplog, lost.run_id)
    assert (lost_record.levelno, lost_record.name) == (logging.WARNING, "wfkit.worker")
    assert lost_record.getMessage() == (
        f"sweep: re-enqueued run {lost.run_id} ({workflows.CHILD}), which had no live queue message"
    )
    (routine,) = _about(caplog, waiting.run_id)
    assert routine.levelno == logging.DEBUG  # waiting on a hook is the sweep's routine
    assert routine.getMessage().endswith("(it waits on a hook)")


def test_json_lines_carry_the_fields() -> None:
    world = MemoryWorld()
    stream = io.StringIO()
    handler = configure_logging("DEBUG", log_format="json", stream=stream)
    try:
        run_id = _run(_run_to_end(world, workflows.RETRIES_THEN_FAILS))
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger("wfkit").setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    about = [d for d in lines if d.get("run_id") == run_id]
    assert [d["level"] for d in about if d["level"] != "DEBUG"] == ["WARNING", "ERROR", "ERROR"]
    retry = about[[d["level"] for d in about].index("WARNING")]
    assert set(retry) >= {"time", "logger", "message", "step_id", "attempt", "error_type"}
    assert retry["attempt"] == 1 and retry["logger"] == "wfkit.executor"
    step_failed = next(d for d in about if d["level"] == "ERROR")
    assert (
        "Traceback" in step_failed["exception"]
        and "ValueError: no luck" in step_failed["exception"]
    )


def test_the_json_formatter_keeps_any_extra_and_stringifies_the_rest() -> None:
    record = logging.LogRecord(
        "wfkit.worker", logging.INFO, __file__, 1, "hello %s", ("you",), None
    )
    for key, value in log_fields("wrun_1", "step_2", attempt=3, note=None).items():
        setattr(record, key, value)
    record.when = object()
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "hello you"
    assert (document["run_id"], document["step_id"], document["attempt"]) == ("wrun_1", "step_2", 3)
    assert "note" not in document and document["when"].startswith("<object object")


def test_configure_logging_refuses_unknown_levels_and_formats() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        configure_logging("loud")
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        configure_logging("INFO", log_format="xml")  # type: ignore[arg-type]
