"""``wfkit inspect`` on a world with encrypted payloads: shown as encrypted without the
key, opened with it (``WFKIT_ENCRYPTION_KEY`` / ``WFKIT_DECRYPTION_KEYS``)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli import wfkit
from wfkit.runtime.serialization.keys import configure_payloads, reset_payload_settings

ROOT = Path(__file__).resolve().parents[2]
KEY = "ka:" + base64.b64encode(b"A" * 32).decode()
SECRET = "cli-s3cr3t-5150"


@pytest.fixture
def encrypted_run(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """A local world holding one failed run whose payloads were encrypted with KEY."""
    import wfbuild
    from wfkit.runtime.api.client import start
    from wfkit.runtime.engine.worker import Worker
    from wfkit.runtime.loading.loader import load_build
    from wfkit.worlds.local import LocalWorld

    build = tmp_path / "build"
    wfbuild.build([ROOT / "examples"], root=ROOT, out=build)
    load_build(build, root=ROOT)
    world = LocalWorld.from_spec(f"sqlite:///{tmp_path / 'wfkit.db'}")
    configure_payloads(KEY)

    async def scenario() -> str:
        run = await start("workflow//./examples/e2e/sealed//fail_with_secret", SECRET, world=world)
        await Worker(world=world, poll_interval=0.01).run_until_complete(run.run_id, timeout=20)
        return run.run_id

    try:
        run_id = asyncio.run(scenario())
    finally:
        reset_payload_settings()
        world.close()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WFKIT_ENCR")},
        "WFKIT_BUILD_DIR": str(build),
        "WFKIT_WORLD": f"sqlite:///{tmp_path / 'wfkit.db'}",
    }
    yield env, run_id


def test_inspect_shows_encrypted_without_the_key(encrypted_run: tuple[dict[str, str], str]) -> None:
    env, run_id = encrypted_run
    record = json.loads(wfkit(env, "inspect", "runs", run_id, "--json").stdout)
    assert record["status"] == "failed"
    assert record["input"] == "[encrypted with key ka]"
    assert record["error"]["type"] == "wfkit.runtime.errors.FatalError"
    assert record["error"]["message"] == "[encrypted with key ka]"
    steps = wfkit(env, "inspect", "steps", run_id).stdout
    events = wfkit(env, "inspect", "events", run_id).stdout
    assert "[encrypted with key ka]" in steps and "[encrypted with key ka]" in events
    for text in (json.dumps(record), steps, events):
        assert SECRET not in text


def test_inspect_opens_payloads_with_the_key(encrypted_run: tuple[dict[str, str], str]) -> None:
    env, run_id = encrypted_run
    env = {**env, "WFKIT_DECRYPTION_KEYS": KEY}
    record = json.loads(wfkit(env, "inspect", "runs", run_id, "--json").stdout)
    assert record["input"]["args"] == [SECRET]
    assert record["error"]["message"] == f"refused {SECRET}"
    assert f"refused {SECRET}" in wfkit(env, "inspect", "steps", run_id).stdout


def test_a_malformed_key_is_one_line(encrypted_run: tuple[dict[str, str], str]) -> None:
    env, run_id = encrypted_run
    result = wfkit(
        {**env, "WFKIT_ENCRYPTION_KEY": "tooshort"}, "inspect", "runs", run_id, check=False
    )
    assert result.returncode != 0
    assert "WFKIT_ENCRYPTION_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_key_without_the_encryption_extra_is_one_line(tmp_path: Path) -> None:
    from tests.cli.test_cli_help import BLOCKER, VENV_BIN

    (tmp_path / "sitecustomize.py").write_text(BLOCKER.format(blocked=["cryptography"]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env |= {"PYTHONPATH": str(tmp_path), "WFKIT_ENCRYPTION_KEY": KEY, "WFKIT_WORLD": "memory"}
    out = subprocess.run(
        [VENV_BIN / "wfkit", "inspect", "runs"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    (line,) = out.stderr.splitlines()
    assert line == (
        "wfkit inspect: this needs the 'encryption' extra (cryptography is not installed): "
        "pip install 'wfkit[encryption]'"
    )
