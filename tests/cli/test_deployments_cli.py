"""``wfkit deployments``, ``deploy``, ``start --deployment`` and why ``inspect`` says a run
is pending, in a user's project on a real SQLite world (every command a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.runtime.deploy_project import build, unique_package, write_version
from wfkit.runtime.loading.deployments import compute_deployment_id


def wfkit(
    root: Path, world: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    result = subprocess.run(
        [sys.executable, "-m", "wfkit", "--world", world, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_deployments_pinning_and_pending_reasons_from_the_command_line(tmp_path: Path) -> None:
    root, package = tmp_path / "app", unique_package()
    world = f"sqlite:///{tmp_path / 'world.db'}"
    write_version(root, package, "v1")
    v1 = compute_deployment_id(build(root))
    workflow = f"{package}.flows:rollout"

    first = wfkit(root, world, "start", workflow, "1").stdout.strip()
    runs = wfkit(root, world, "inspect", "runs").stdout
    row = next(line for line in runs.splitlines() if line.startswith(first))
    assert v1 in row.split() and "pending" in row.split()
    reason = next(line for line in runs.splitlines() if line.startswith(f"{first}: "))
    assert reason.startswith(f"{first}: waiting for a worker that serves deployment {v1}; ")
    assert reason.endswith("its build is here (current build): `wfkit worker` serves it")
    record = json.loads(wfkit(root, world, "inspect", "run", first, "--json").stdout)
    assert record["deployment_id"] == v1
    assert record["pending_reason"].startswith(f"waiting for a worker that serves deployment {v1}")

    write_version(root, package, "v2")
    v2 = compute_deployment_id(build(root))
    second = wfkit(root, world, "start", workflow, "2").stdout.strip()
    pinned_back = wfkit(root, world, "start", "--deployment", v1, workflow, "3").stdout.strip()
    rows = json.loads(wfkit(root, world, "deployments", "--json").stdout)
    assert rows == [
        {"deployment": v1, "here": "kept", "in_flight": 2, "pending": 2, "running": 0},
        {"deployment": v2, "here": "current build", "in_flight": 1, "pending": 1, "running": 0},
    ]
    table = wfkit(root, world, "deployments").stdout.splitlines()
    assert table[0].split() == ["DEPLOYMENT", "HERE", "IN_FLIGHT", "PENDING", "RUNNING"]
    assert table[1].split() == [v1, "kept", "2", "2", "0"]

    bad = wfkit(root, world, "start", "--deployment", "v1", workflow, "4", check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "expected 'latest' or a deployment ID" in bad.stderr
    unknown = "d_" + "f" * 24
    missing = wfkit(root, world, "start", "--deployment", unknown, workflow, "4", check=False)
    assert missing.returncode == 1
    assert f"DeploymentNotFoundError: deployment {unknown} is not known here" in missing.stderr

    # v1's kept copy stays while its runs are in flight, and goes with --prune after.
    assert "pruned" not in wfkit(root, world, "deployments", "--prune").stdout
    for run_id in (first, pinned_back):
        wfkit(root, world, "cancel", run_id)
    pruned = wfkit(root, world, "deployments", "--all", "--prune").stdout
    assert f"pruned kept deployment {v1} (no run in flight)" in pruned
    assert not (root / ".wfkit" / "deployments" / v1).exists()
    rows = json.loads(wfkit(root, world, "deployments", "--all", "--json").stdout)
    by_id = {r["deployment"]: r for r in rows}
    assert (by_id[v1]["here"], by_id[v1]["cancelled"], by_id[v1]["in_flight"]) == ("", 2, 0)
    assert by_id[v2]["pending"] == 1 and second

    kept = wfkit(root, world, "deploy").stdout
    assert kept.strip() == f"kept deployment {v2} at {root / '.wfkit' / 'deployments' / v2}"
