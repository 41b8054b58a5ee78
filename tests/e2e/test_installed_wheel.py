"""SCENARIOS.md 33, as a new user would do it: ``myapp`` built into a wheel with the wfkit
Hatch hook, installed with wfkit's own wheel into a fresh venv, the source tree deleted;
a real ``wfkit worker`` in one unrelated directory, the app's code in another.

The app starts workflows by the functions it imports (``start(pipeline, 12)``; IDs come
from the installed manifest), passes a step function as an argument, and checks that a
dataclass, a pydantic model, a ``__wfkit_serialize__`` class and an exception arrive as
instances of the classes it imported; the workflow and its steps report the same for
themselves. On the local world (SQLite) and on Postgres.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import postgres_url
from tests.e2e.packaging import build_dist, copy_repo, make_venv
from tests.e2e.wheel_project import write_project

pytestmark = pytest.mark.slow

CLIENT = """
import asyncio, json
from wfkit import WorkflowRunFailedError, start
from myapp.jobs import apply, pipeline, too_heavy
from myapp.models import Money, Overweight, Parcel, Quote, weigh


async def main():
    run = await start(pipeline, 12)
    result = await run.result(timeout=90)
    failing = await start(too_heavy, 500)
    try:
        await failing.result(timeout=90)
        cause = None
    except WorkflowRunFailedError as exc:
        cause = exc.cause
    applied = await (await start(apply, weigh, Parcel("a", 3))).result(timeout=90)
    print(json.dumps({
        "workflow_name": run.workflow_name,
        "client_sees": [
            isinstance(result["parcel"], Parcel),
            isinstance(result["quote"], Quote),
            isinstance(result["money"], Money),
            isinstance(result["error"], Overweight),
            isinstance(cause, Overweight),
        ],
        "values": [result["parcel"].weight, result["quote"].cents, result["money"].cents,
                   result["error"].weight, cause.label],
        "step_sees": result["step_sees"],
        "workflow_sees": result["workflow_sees"],
        "applied": applied,
    }))


asyncio.run(main())
"""


@dataclass(frozen=True)
class Installed:
    """A fresh venv holding the wfkit wheel and the myapp wheel, and nothing else of ours."""

    bindir: Path
    app_wheel_names: frozenset[str]
    wfkit_wheel_names: frozenset[str]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("installed-wheel")
    (wfkit_wheel,) = build_dist(copy_repo(work / "wfkit-copy"), work / "dist", "--wheel")
    project = write_project(work / "project")
    # A developer's local world lives in the project; it must not ship.
    (project / ".wfkit").mkdir()
    for name in ("wfkit.db", "wfkit.db-wal", "wfkit.db-shm"):
        (project / ".wfkit" / name).write_bytes(b"users' data")
    (app_wheel,) = build_dist(project, work / "dist", "--wheel")
    bindir = make_venv(work / "venv", wfkit_wheel, app_wheel)
    shutil.rmtree(project)  # the source tree is gone: only the installed wheel is left
    with zipfile.ZipFile(app_wheel) as archive:
        names = frozenset(archive.namelist())
    with zipfile.ZipFile(wfkit_wheel) as archive:
        wfkit_names = frozenset(archive.namelist())
    return Installed(bindir, names, wfkit_names)


TYPED_CLIENT = """
from wfkit import Run, start


async def double(n: int) -> int:
    "use workflow"
    return n * 2


async def main() -> None:
    run = await start(double, 21)
    reveal_type(run)
    reveal_type(await run.result())
    await start(double, "twenty-one")
"""


def test_mypy_sees_the_installed_wheels_types(installed: Installed, tmp_path: Path) -> None:
    """The wheel ships ``wfkit/py.typed``, so mypy (run by the fresh venv's interpreter,
    outside any source tree) reads wfkit's types: no "missing library stubs", ``start``
    gives ``Run[int]`` and catches a wrong argument."""
    assert "wfkit/py.typed" in installed.wfkit_wheel_names
    elsewhere = tmp_path / "typed-client"
    elsewhere.mkdir()
    (elsewhere / "client.py").write_text(TYPED_CLIENT)
    done = subprocess.run(
        [str(installed.bindir / "python"), "-m", "mypy", "--strict", "--no-incremental",
         "client.py"],
        cwd=elsewhere, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert "missing library stubs" not in out and "py.typed" not in out, out
    assert (
        'client.py:12: note: Revealed type is "wfkit.runtime.api.run_handle.Run[int]"'
        in out
    )
    assert 'client.py:13: note: Revealed type is "int"' in out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1 and errors[0].startswith("client.py:14: error: No overload variant")


def test_the_app_wheel_carries_the_build_and_no_local_world(installed: Installed) -> None:
    names = installed.app_wheel_names
    assert {"myapp/jobs.py", "myapp/models.py", "__wfkit_build__/manifest.json"} <= names
    for mode in ("workflow", "step"):
        assert f"__wfkit_build__/{mode}/myapp/jobs.py" in names
        assert f"__wfkit_build__/{mode}/myapp/models.py" in names
    assert not any(".wfkit" in name for name in names)


@dataclass
class WorldSpec:
    spec: str
    cleanup: list[str]


def _local(tmp_path: Path) -> WorldSpec:
    return WorldSpec(f"sqlite:///{tmp_path / 'shared' / 'wfkit.db'}", [])


def _postgres(tmp_path: Path) -> WorldSpec:
    url = postgres_url()
    assert url
    schema = f"wheel_{uuid.uuid4().hex[:12]}"
    return WorldSpec(f"{url}{'&' if '?' in url else '?'}schema={schema}", [schema])


@pytest.fixture(
    params=[
        "local",
        pytest.param(
            "postgres",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(
                    not postgres_url(), reason="WFKIT_TEST_POSTGRES_URL not set (CI sets it)"
                ),
            ],
        ),
    ]
)
def world_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    made = (_local if request.param == "local" else _postgres)(tmp_path)
    (tmp_path / "shared").mkdir()
    try:
        yield made.spec
    finally:
        if made.cleanup:
            from wfkit.worlds.postgres import PostgresWorld

            world = PostgresWorld(made.spec)
            world.drop_schema()
            world.close()


def _clean_env(spec: str) -> dict[str, str]:
    """The environment of a process in the fresh venv: nothing pointing into the repo."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("WFKIT_", "PYTHON", "VIRTUAL_ENV"))
    }
    return {**env, "WFKIT_WORLD": spec, "PYTHONUNBUFFERED": "1"}


def test_an_installed_wheel_runs_from_any_directory(
    installed: Installed, world_spec: str, tmp_path: Path
) -> None:
    worker_dir, app_dir = tmp_path / "srv" / "worker", tmp_path / "home" / "app"
    worker_dir.mkdir(parents=True)
    app_dir.mkdir(parents=True)
    (app_dir / "client.py").write_text(CLIENT)
    env = _clean_env(world_spec)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [str(installed.bindir / "wfkit"), "worker", "--concurrency", "4"],
            cwd=worker_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        client = subprocess.run(
            [str(installed.bindir / "python"), "client.py"],
            cwd=app_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert worker.poll() is None, log_path.read_text()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=30)
    assert client.returncode == 0, client.stderr + "\n--- worker log ---\n" + log_path.read_text()
    report = json.loads(client.stdout)
    assert report["workflow_name"] == "workflow//./myapp/jobs//pipeline"
    # Parcel(p12, 12) -> heavier by 1 -> 13; quote = Money(100) + Quote(cents=13); Money(13);
    # the caught error is Overweight("big", 1000); the failed run's cause is Overweight("huge").
    assert report["values"] == [13, 113, 13, 1000, "huge"]
    assert report["client_sees"] == [True, True, True, True, True]
    assert report["step_sees"] == [True, True, True]
    assert report["workflow_sees"] == [True, True, True, True]
    assert report["applied"] == 3
    # The deployment travels in the wheel: the app pinned its runs to the ID the worker
    # computes from the same installed build (or the worker would never have served them).
    listed = subprocess.run(
        [str(installed.bindir / "wfkit"), "deployments", "--all", "--json"],
        cwd=worker_dir, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["deployment"].startswith("d_") and row["here"] == "current build"
    assert (row["in_flight"], row["completed"], row["failed"]) == (0, 2, 1)
    # Nothing of the source tree came back, and the worker's directory got no database.
    assert not (worker_dir / ".wfkit").exists()


def test_the_worker_refuses_an_incomplete_installed_build(
    installed: Installed, tmp_path: Path
) -> None:
    site = next((installed.bindir.parent / "lib").glob("python3*/site-packages"))
    step_module = site / "__wfkit_build__" / "step" / "myapp" / "models.py"
    hidden = tmp_path / "models.py"
    shutil.move(step_module, hidden)
    try:
        began = time.monotonic()
        result = subprocess.run(
            [str(installed.bindir / "wfkit"), "worker"],
            cwd=tmp_path,
            env=_clean_env(f"sqlite:///{tmp_path / 'wfkit.db'}"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        shutil.move(hidden, step_module)
    assert result.returncode == 1
    assert time.monotonic() - began < 30  # it exits; it does not start serving
    assert "InvalidBuildError" in result.stderr
    assert "missing generated module step/myapp/models.py (myapp.models)" in result.stderr


def test_wfkit_run_uses_the_installed_build(installed: Installed, tmp_path: Path) -> None:
    """``wfkit run`` builds a project's stale sources; an installed app has none to build:
    it runs on the build the wheel carries, from any directory."""
    result = subprocess.run(
        [str(installed.bindir / "wfkit"), "run", "myapp.jobs:pipeline", "12"],
        cwd=tmp_path,
        env=_clean_env(f"sqlite:///{tmp_path / 'wfkit.db'}"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["step_sees"] == [True, True, True]
    assert report["workflow_sees"] == [True, True, True, True]
    assert report["parcel"] == {"label": "p12", "weight": 13}  # a dataclass as a JSON object
    assert not (tmp_path / ".wfkit").exists()  # nothing was built here
