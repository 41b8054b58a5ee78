"""SCENARIO 37: logs exported from v1 runs, replayed by ``wfbuild check --replay`` against v2.

A real project on the local world: v1 runs to its end (one run finishes, one is left
waiting on a hook), ``wfkit export`` writes their logs, the code changes, and the check
reports an incompatible change at the user's line (exit 1) while a compatible change
passes (exit 0). Nothing is written by the check: the world's logs stay as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

V1 = """
from wfkit import create_hook, sleep


async def charge(order_id: str) -> str:
    "use step"
    return f"charged-{order_id}"


async def refund(order_id: str) -> str:
    "use step"
    return f"refunded-{order_id}"


async def pipeline(order_id: str) -> str:
    "use workflow"
    receipt = await charge(order_id)
    await sleep(0.01)
    if order_id == "o-wait":
        await create_hook(token="approve:o-wait")
    return receipt
"""
INCOMPATIBLE = V1.replace(
    "    receipt = await charge(order_id)\n", "    receipt = await refund(order_id)\n"
)
COMPATIBLE = V1.replace('return f"charged-{order_id}"', 'return f"charged:{order_id}"')
STARTER = """
import asyncio, sys
import wfkit
from app.flows import pipeline

async def main() -> None:
    async with wfkit.worker():
        done = await wfkit.start(pipeline, "o-1")
        print(await done.result(timeout=30))
        waiting = await wfkit.start(pipeline, "o-wait")
        await wfkit.wait_for_hook("approve:o-wait", timeout=30)
    print(done.run_id, waiting.run_id)

wfkit.build()
asyncio.run(main())
"""


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WFKIT_WORLD", "PYTHONPATH")}
    return subprocess.run(
        [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    (root / "app").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "shop"\nversion = "1"\n\n[tool.wfkit]\npaths = ["app"]\n'
    )
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "flows.py").write_text(V1)
    (root / "start.py").write_text(textwrap.dedent(STARTER))
    return root


def _line_of(source: str, text: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


@pytest.mark.slow
def test_replay_check_names_the_changed_call_at_the_users_line(project: Path) -> None:
    started = _run(project, "start.py")
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines()[0] == "charged-o-1"
    run_ids = started.stdout.split()[-2:]

    exported = _run(project, "-m", "wfkit", "export", *run_ids, "--dir", "logs")
    assert exported.returncode == 0, exported.stderr
    logs = sorted((project / "logs").glob("*.json"))
    assert [p.stem for p in logs] == sorted(run_ids)
    log = json.loads(logs[0].read_text())
    assert log["format"] == "wfkit-run-log/1" and log["events"][0]["event_type"] == "run_created"

    # v1 against itself: both logs replay
    same = _run(project, "-m", "wfbuild", "check", "--replay", "logs")
    assert same.returncode == 0, same.stdout + same.stderr
    assert "replayed 2 run(s) against the build: 2 ok, 0 diverged" in same.stdout

    (project / "app" / "flows.py").write_text(COMPATIBLE)
    assert _run(project, "-m", "wfbuild", "build").returncode == 0
    compatible = _run(project, "-m", "wfbuild", "check", "--replay", "logs", "--replay", "local")
    assert compatible.returncode == 0, compatible.stdout + compatible.stderr
    assert "replayed 4 run(s) against the build: 4 ok" in compatible.stdout

    (project / "app" / "flows.py").write_text(INCOMPATIBLE)
    assert _run(project, "-m", "wfbuild", "build").returncode == 0
    before = (project / ".wfkit" / "wfkit.db").read_bytes()
    diverged = _run(project, "-m", "wfbuild", "check", "--replay", "logs")
    assert diverged.returncode == 1, diverged.stdout + diverged.stderr
    assert "2 ok" not in diverged.stdout and "0 ok, 2 diverged" in diverged.stdout
    line = _line_of(INCOMPATIBLE, "await refund(order_id)")
    reports = diverged.stderr.strip().splitlines()
    assert len([r for r in reports if r.startswith(f"app/flows.py:{line}: ")]) == 2, diverged.stderr
    for report in reports:
        assert "pipeline" in report and "charge" in report and "refund" in report, report
    assert (project / ".wfkit" / "wfkit.db").read_bytes() == before  # the check wrote nothing

    # the world as a source gives the same verdicts
    from_world = _run(project, "-m", "wfbuild", "check", "--replay", "local")
    assert from_world.returncode == 1 and "0 ok, 2 diverged" in from_world.stdout


def test_replay_check_refuses_a_file_that_is_not_a_run_log(project: Path) -> None:
    assert _run(project, "-m", "wfbuild", "build").returncode == 0
    (project / "bad.json").write_text('{"hello": 1}')
    result = _run(project, "-m", "wfbuild", "check", "--replay", "bad.json")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "wfbuild: error: --replay bad.json: bad.json: not a wfkit run log (written by `wfkit export`)"
    )


def test_export_of_an_unknown_run_is_one_line(project: Path) -> None:
    result = _run(project, "-m", "wfkit", "export", "wrun_nope")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "wrun_nope" in result.stderr
