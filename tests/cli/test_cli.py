"""The wfkit command line, on a real SQLite world: the examples build, and a user's project
run from its subdirectories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.wheel_project import build_project, unique_package, write_project

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import wfbuild

    work = tmp_path_factory.mktemp("cli")
    build = work / "build"
    wfbuild.build([ROOT / "examples"], root=ROOT, out=build)
    return {
        **os.environ,
        "WFKIT_BUILD_DIR": str(build),
        "WFKIT_WORLD": f"sqlite:///{work / 'wfkit.db'}",
    }


def wfkit(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wfkit", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def test_run_start_inspect_cancel_verify(env: dict[str, str]) -> None:
    done = wfkit(env, "run", "examples.e2e.basics:add_ten", "123")
    assert json.loads(done.stdout) == 133

    runs = wfkit(env, "inspect", "runs").stdout
    assert "add_ten" in runs and "completed" in runs
    run_id = next(line.split()[0] for line in runs.splitlines() if "add_ten" in line)

    timeline = wfkit(env, "inspect", "events", run_id).stdout
    assert [line.split()[2] for line in timeline.splitlines()][:3] == [
        "run_created",
        "run_started",
        "step_created",
    ]
    steps = json.loads(wfkit(env, "inspect", "steps", run_id, "--json").stdout)
    assert [s["status"] for s in steps] == ["completed"] * 3

    started = wfkit(env, "start", "workflow//./examples/e2e/hooks//wait_once", '"cli-token"')
    pending = started.stdout.strip()
    assert pending.startswith("wrun_")
    wfkit(env, "cancel", pending)
    record = json.loads(wfkit(env, "inspect", "runs", pending, "--json").stdout)
    assert record["status"] == "cancelled"

    assert "every materialized record equals" in wfkit(env, "verify").stdout
    assert "re-enqueued" in wfkit(env, "heal").stdout


def test_bad_input_gets_one_clear_line(env: dict[str, str]) -> None:
    bad_json = wfkit(
        env, "start", "workflow//./examples/e2e/basics//add_ten", "not-json", check=False
    )
    assert bad_json.returncode != 0
    assert "is not JSON" in bad_json.stderr and "Traceback" not in bad_json.stderr

    missing = wfkit(env, "inspect", "runs", "wrun_nope", check=False)
    assert missing.returncode == 1
    assert "RunNotFoundError" in missing.stderr and "Traceback" not in missing.stderr

    unknown = wfkit(env, "inspect", "gadgets", check=False)
    assert unknown.returncode != 0 and "unknown resource" in unknown.stderr


def test_serve_answers_health_manifest_and_unknown_webhooks(env: dict[str, str]) -> None:
    import socket
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "wfkit", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/.well-known/workflow/v1"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "wfkit serve did not come up"
                time.sleep(0.1)
        assert health.status_code == 200
        manifest = httpx.get(f"{base}/manifest.json", timeout=5).json()
        assert "workflow//./examples/e2e/basics//add_ten" in json.dumps(manifest)
        assert httpx.post(f"{base}/webhook/no-such-token", timeout=5).status_code == 404
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- a user's project: the root found from a subdirectory; an incomplete build --------------


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str, dict[str, str]]:
    """(root, package, env) of a built throwaway project; env names no world and no build."""
    package = unique_package()
    root = write_project(tmp_path / "project", package)
    build_project(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WFKIT_", "PYTHONPATH"))}
    return root, package, env


def wfkit_in(
    cwd: Path, env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wfkit", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=check,
    )  # fmt: skip


def test_the_local_world_is_the_projects_from_any_subdirectory(
    project: tuple[Path, str, dict[str, str]],
) -> None:
    root, package, env = project
    sub = root / package
    started = wfkit_in(sub, env, "start", f"{package}.jobs:pipeline", "12").stdout.strip()
    assert started.startswith("wrun_")
    runs = wfkit_in(root, env, "inspect", "runs").stdout
    assert started in runs and "pipeline" in runs
    record = json.loads(wfkit_in(sub, env, "inspect", "runs", started, "--json").stdout)
    assert record["workflow_name"] == f"workflow//./{package}/jobs//pipeline"
    assert (root / ".wfkit" / "wfkit.db").is_file()
    assert (root / ".wfkit" / ".gitignore").read_text() == "*\n"
    assert not (sub / ".wfkit").exists()

    unknown = wfkit_in(sub, env, "start", f"{package}.jobs:pipelin", check=False)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith(f"wfkit start: no workflow {package}.jobs:pipelin in the")
    assert f"did you mean {package}.jobs:pipeline?" in unknown.stderr
    assert len(unknown.stderr.splitlines()) == 1


def test_a_plain_folder_project_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    """No pyproject.toml: the folder the project was first built in holds ``.wfkit/``, and
    commands run from a subdirectory use its build and its world."""
    package = unique_package()
    root = write_project(tmp_path / "plain", package)
    (root / "pyproject.toml").unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WFKIT_", "PYTHONPATH"))}
    built = subprocess.run(
        [sys.executable, "-m", "wfbuild", "build"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    sub = root / package
    started = wfkit_in(sub, env, "start", f"{package}.jobs:pipeline", "12").stdout.strip()
    assert started.startswith("wrun_")
    assert started in wfkit_in(root, env, "inspect", "runs").stdout
    assert started in wfkit_in(sub, env, "inspect", "runs").stdout
    assert not (sub / ".wfkit").exists()


def test_start_refuses_an_id_the_build_does_not_list(
    project: tuple[Path, str, dict[str, str]],
) -> None:
    root, package, env = project
    typo = f"workflow//./{package}/jobs//pipelne"
    refused = wfkit_in(root, env, "start", typo, "12", check=False)
    assert refused.returncode == 2
    (line,) = refused.stderr.splitlines()
    assert line.startswith(f"wfkit start: no workflow {typo} in the build (")
    assert f"did you mean workflow//./{package}/jobs//pipeline?" in line
    assert wfkit_in(root, env, "inspect", "runs", "--json").stdout.strip() == "[]"  # no run


def test_workflows_lists_ids_with_their_source_lines(
    project: tuple[Path, str, dict[str, str]],
) -> None:
    root, package, env = project
    listed = wfkit_in(root / package, env, "workflows").stdout.splitlines()
    source = (root / package / "jobs.py").read_text().splitlines()
    line = source.index("async def pipeline(n: int) -> dict:") + 1
    assert f"workflow//./{package}/jobs//pipeline  {package}/jobs.py:{line}" in [
        " ".join(row.split()).replace(" ", "  ", 1) for row in listed
    ]
    rows = json.loads(wfkit_in(root, env, "workflows", "--json").stdout)
    assert {"id": f"workflow//./{package}/jobs//pipeline", "module": f"{package}.jobs",
            "source": f"{package}/jobs.py:{line}"} in rows  # fmt: skip


CONSOLE_SCRIPT = Path(sys.executable).parent / "wfkit"


@pytest.mark.parametrize("where", ["root", "subdirectory"])
def test_the_console_script_runs_the_projects_modules(
    project: tuple[Path, str, dict[str, str]], where: str
) -> None:
    """``.venv/bin/wfkit run`` (not ``python -m``: no cwd on sys.path) from a project
    outside this repository."""
    root, package, env = project
    cwd = root if where == "root" else root / package
    assert ROOT not in cwd.parents
    done = subprocess.run(
        [CONSOLE_SCRIPT, "run", f"{package}.jobs:pipeline", "12"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["step_sees"] == [True, True, True]

    for target, message in [
        (f"{package}.jobs:pipelin", f"wfkit run: module {package}.jobs has no attribute "
         "'pipelin'; did you mean pipeline?"),
        (f"{package}.nope:pipeline", f"wfkit run: no module named '{package}.nope' in the "
         f"project at {root.resolve()}"),
    ]:  # fmt: skip
        bad = subprocess.run(
            [CONSOLE_SCRIPT, "run", target], cwd=cwd, env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert bad.returncode == 1
        (line,) = bad.stderr.splitlines()
        assert line.startswith(message)


def test_a_worker_refuses_an_incomplete_build(project: tuple[Path, str, dict[str, str]]) -> None:
    root, package, env = project
    (root / ".wfkit" / "build" / "workflow" / package / "jobs.py").unlink()
    refused = wfkit_in(root, env, "worker", check=False)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert (
        f"wfkit worker: InvalidBuildError: the build at {root.resolve() / '.wfkit' / 'build'} "
        "is incomplete" in refused.stderr
    )
    assert f"missing generated module workflow/{package}/jobs.py ({package}.jobs)" in (
        refused.stderr
    )
    assert "wfkit worker: world=" not in refused.stdout  # it never started serving


def test_run_from_a_subdirectory_builds_and_runs_the_project(
    project: tuple[Path, str, dict[str, str]],
) -> None:
    root, package, env = project
    (root / package / "jobs.py").write_text(
        (root / package / "jobs.py").read_text() + "\n\nasync def twice(n: int) -> int:\n"
        '    "use workflow"\n    return (await pack(n)).weight * 2\n'
    )  # a change since the last build: `wfkit run` rebuilds first
    done = wfkit_in(root / package, env, "run", f"{package}.jobs:twice", "21")
    assert json.loads(done.stdout) == 42
    manifest = json.loads((root / ".wfkit" / "build" / "manifest.json").read_text())
    assert "twice" in manifest["workflows"][f"{package}/jobs.py"]
