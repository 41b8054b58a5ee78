"""Encryption and compression at rest, end to end on every world: what is stored holds
no plaintext, a worker without the key fails the run in one clear line, keys rotate,
a log can mix plain and encrypted payloads, large payloads shrink."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from examples.e2e import sealed
from tests.e2e.conftest import events_of, run_async, running_worker
from wfkit import HookNotFoundError, WorkflowRunFailedError, get_hook_by_token, resume_hook, start
from wfkit.runtime.serialization.keys import configure_payloads, reset_payload_settings

KEY_A = "ka:" + base64.b64encode(b"A" * 32).decode()
KEY_B = "kb:" + base64.b64encode(b"B" * 32).decode()
SECRET = "plaintext-s3cr3t-7731"
HOOK_SECRET = "hook-pin-4412"


@pytest.fixture(autouse=True)
def plain_afterwards() -> Iterator[None]:
    reset_payload_settings()
    yield
    reset_payload_settings()


def raw_rows(world: Any, tmp_path: Path) -> str:
    """Everything the world stored, as its storage holds it."""
    kind = type(world).__name__
    if kind == "LocalWorld":
        world.close()  # checkpoints the WAL into the file
        return "".join(p.read_bytes().decode("latin-1") for p in tmp_path.glob("wfkit.db*"))
    if kind == "PostgresWorld":
        url = world.url.set(drivername="postgresql").render_as_string(hide_password=False)
        parts = []
        with psycopg.connect(url) as connection:
            tables = connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (world.schema,),
            ).fetchall()
            for (table,) in tables:
                query = f'SELECT * FROM "{world.schema}"."{table}"'
                for row in connection.execute(query):  # type: ignore[arg-type]
                    parts += [_as_text(value) for value in row]
        return "\n".join(parts)
    # memory: its state (records, logs, stream chunks, queue) is the stored form
    core = world.events._core
    return repr((core.state, core.events, core.streams, core.messages))


def _as_text(value: Any) -> str:
    """A column's value as its bytes read (bytea chunks are not hex-escaped)."""
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("latin-1")
    return value if isinstance(value, str) else json.dumps(value, default=str)


async def _hook(token: str, world: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await get_hook_by_token(token, world=world)
        except HookNotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


def test_an_encrypted_run_completes_and_its_rows_hold_no_plaintext(
    world: Any, tmp_path: Path
) -> None:
    configure_payloads(KEY_A)

    async def scenario() -> tuple[str, Any, list[Any]]:
        async with running_worker(world):
            run = await start(sealed.carry_secret, SECRET, "tok-enc", world=world)
            hook = await _hook("tok-enc", world)
            assert hook.metadata == {"about": SECRET}  # opened: this process has the key
            await resume_hook("tok-enc", {"pin": HOOK_SECRET}, world=world)
            result = await run.result(timeout=30)
            chunks = [c async for c in run.readable()]
            return run.run_id, result, chunks

    run_id, result, chunks = run_async(scenario())
    assert result == {
        "loud": SECRET.upper() + "!",
        "refusal": f"refused {SECRET}",
        "hook": {"pin": HOOK_SECRET},
    }
    assert chunks == [{"chunk": SECRET}, SECRET.encode()]
    kinds = {e.event_type: e.data for e in events_of(world, run_id)}
    assert kinds["step_failed"]["error"]["type"] == "wfkit.runtime.errors.FatalError"
    assert kinds["step_failed"]["error"]["message"] == "[encrypted]"
    stored = raw_rows(world, tmp_path)
    for plaintext in (SECRET, SECRET.upper(), HOOK_SECRET, "refused"):
        assert plaintext not in stored
    assert "encr" in stored and "ka" in stored  # the format and key id stay readable


def test_a_worker_without_the_key_fails_the_run_in_one_clear_line(world: Any) -> None:
    configure_payloads(KEY_A)

    async def scenario() -> tuple[str, Any]:
        run = await start(sealed.carry_secret, SECRET, "tok-nokey", world=world)
        reset_payload_settings()  # the worker below has no key (WFKIT_* unset)
        configure_payloads()
        async with running_worker(world):
            try:
                await run.result(timeout=30)
            except WorkflowRunFailedError as exc:
                return run.run_id, exc
        raise AssertionError("the run did not fail")

    run_id, failure = run_async(scenario())
    assert "key id 'ka'" in str(failure)
    assert "\n" not in failure.error["message"]
    assert failure.error["type"] == "wfkit.runtime.errors.PayloadDecryptionError"
    assert [e.event_type for e in events_of(world, run_id)].count("run_failed") == 1


def test_turning_encryption_on_mid_run(world: Any) -> None:
    """Started plain; the key arrives while the run waits on its hook; the log mixes both."""

    async def scenario() -> tuple[str, Any]:
        async with running_worker(world):
            run = await start(sealed.carry_secret, SECRET, "tok-mid", world=world)
            await _hook("tok-mid", world)
            configure_payloads(KEY_A)
            await resume_hook("tok-mid", {"pin": HOOK_SECRET}, world=world)
            return run.run_id, await run.result(timeout=30)

    run_id, result = run_async(scenario())
    assert result["hook"] == {"pin": HOOK_SECRET}
    events = events_of(world, run_id)
    created = next(e for e in events if e.event_type == "run_created")
    assert created.data["input"]["args"][0] == SECRET  # written plain, before the key
    received = next(e for e in events if e.event_type == "hook_received")
    assert received.data["payload"]["kid"] == "ka"


def test_old_key_still_opens_old_payloads_after_rotation(world: Any) -> None:
    configure_payloads(KEY_A)

    async def scenario() -> Any:
        run = await start(sealed.echo_big, "short", world=world)
        configure_payloads(KEY_B, decryption_keys=[KEY_A])
        async with running_worker(world):
            return run.run_id, await run.result(timeout=30)

    run_id, result = run_async(scenario())
    assert result == {"size": 6, "head": "SHORT!"}
    kids = {
        e.data[field]["kid"]
        for e in events_of(world, run_id)
        for field in ("input", "result", "output")
        if isinstance(e.data.get(field), dict) and "kid" in e.data[field]
    }
    assert kids == {"ka", "kb"}


def test_compression_round_trips_and_shrinks_a_large_payload(world: Any, tmp_path: Path) -> None:
    configure_payloads(compress_over=1024)
    blob = "abcdefgh" * 50_000

    async def scenario() -> Any:
        async with running_worker(world):
            run = await start(sealed.echo_big, blob, world=world)
            return run.run_id, await run.result(timeout=30)

    run_id, result = run_async(scenario())
    assert result == {"size": len(blob) + 1, "head": "ABCDEFGHAB"}
    created = next(e for e in events_of(world, run_id) if e.event_type == "run_created")
    assert created.data["input"]["$t"] == "gzip"
    assert len(json.dumps(created.data["input"])) < len(blob) // 50
    assert "abcdefgh" * 100 not in raw_rows(world, tmp_path)


def test_compressed_then_encrypted(world: Any, tmp_path: Path) -> None:
    configure_payloads(KEY_A, compress_over=1024)
    blob = SECRET * 20_000

    async def scenario() -> Any:
        async with running_worker(world):
            run = await start(sealed.echo_big, blob, world=world)
            return run.run_id, await run.result(timeout=30)

    run_id, result = run_async(scenario())
    assert result["size"] == len(blob) + 1
    created = next(e for e in events_of(world, run_id) if e.event_type == "run_created")
    assert created.data["input"]["$t"] == "encr"
    assert len(created.data["input"]["v"]) < len(blob) // 50
    assert SECRET not in raw_rows(world, tmp_path)


def test_the_inspector_shows_encrypted_unless_it_has_the_key(world: Any) -> None:
    from tests.web.inspector_client import request, text_of

    configure_payloads(KEY_A)

    async def scenario() -> str:
        async with running_worker(world):
            run = await start(sealed.fail_with_secret, SECRET, world=world)
            with pytest.raises(WorkflowRunFailedError, match=f"refused {SECRET}"):
                await run.result(timeout=30)
            return run.run_id

    run_id = run_async(scenario())
    page = text_of(request(world, "GET", f"/runs/{run_id}").text)
    assert SECRET in page  # this process has the key: payloads and errors opened
    configure_payloads()
    page = text_of(request(world, "GET", f"/runs/{run_id}").text)
    assert SECRET not in page
    assert "[encrypted with key ka]" in page
    assert "FatalError" in page and "failed" in page  # the type and status stay readable
    api = request(world, "GET", f"/api/runs/{run_id}").json()
    assert api["run"]["input"] == "[encrypted with key ka]"
    assert api["run"]["error"]["message"] == "[encrypted with key ka]"
    assert SECRET not in json.dumps(api)


def test_webhooks_answer_over_http_with_encryption_on(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SCENARIOS 10 with every payload sealed, the manual answer's stream chunk too."""
    from tests.e2e.test_surface_scenarios import test_10_webhooks_over_http as webhooks_scenario

    configure_payloads(KEY_A)
    webhooks_scenario(world, monkeypatch)
    chunks = [
        chunk
        for run in world.runs.list()
        for name in world.streams.list(run.run_id)
        for chunk in world.streams.read(run.run_id, name).chunks
    ]
    assert chunks and all(chunk.startswith(b"encr") for chunk in chunks)
