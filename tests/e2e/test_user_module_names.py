"""A user project whose own top-level modules are named like wfkit's folders builds and runs.

Before the wfkit.* namespace, wfkit installed top-level ``runtime``, ``worlds``,
``transformer`` and ``hatch_plugin`` packages: a project with its own ``runtime.py``
could not build (``cannot import name 'module_name_for' from 'transformer'``) nor
import wfkit. Here such a project, whose workflow and steps import those modules,
is built with ``python -m wfbuild build`` and run by a real ``wfkit worker`` process,
started from app code; from the project directory, so its modules shadow nothing of ours.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import postgres_url

FILES = {
    "pyproject.toml": '[project]\nname = "clash"\nversion = "0.1.0"\n\n[tool.wfkit]\npaths = ["app"]\n',
    "runtime.py": "def label(n: int) -> str:\n    return f'runtime-{n}'\n",
    "worlds.py": "PLANETS = ('mercury', 'venus')\n",
    "transformer/__init__.py": "def shout(text: str) -> str:\n    return text.upper()\n",
    "hatch_plugin.py": "EGGS = 3\n",
    "app/__init__.py": "",
    "app/flows.py": """
        import hatch_plugin
        import runtime
        import transformer
        from worlds import PLANETS


        async def describe(n: int) -> str:
            "use step"
            return transformer.shout(runtime.label(n)) + f"/{PLANETS[n % 2]}/{hatch_plugin.EGGS}"


        async def clash(n: int) -> list[str]:
            "use workflow"
            return [await describe(n), await describe(n + 1)]
    """,
    "start.py": """
        import asyncio, sys
        import wfkit
        from app.flows import clash

        async def main() -> None:
            run = await wfkit.start(clash, 4)
            print(run.run_id)
            print(await run.result(timeout=60))

        asyncio.run(main())
    """,
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "clash"
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


WORLDS = [pytest.param("local", id="local")]
if postgres_url():
    WORLDS.append(pytest.param("postgres", id="postgres"))
else:
    WORLDS.append(pytest.param("postgres", id="postgres", marks=pytest.mark.skip("no Postgres")))


@pytest.mark.slow
@pytest.mark.parametrize("world", WORLDS)
def test_project_with_wfkit_folder_names_builds_and_runs(project: Path, world: str) -> None:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if world == "postgres":
        env["WFKIT_WORLD"] = str(postgres_url())
    else:
        env["WFKIT_WORLD"] = f"sqlite:///{project / 'clash.db'}"

    def run(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True,
            timeout=120, **kw,  # type: ignore[call-overload]
        )  # fmt: skip

    built = run("-m", "wfbuild", "build")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "1 workflow, 1 step" in built.stdout + built.stderr

    worker = subprocess.Popen(
        [sys.executable, "-m", "wfkit", "worker"], cwd=project, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        started = run("start.py")
    finally:
        worker.terminate()
        worker_output = worker.communicate(timeout=30)[0]
    assert started.returncode == 0, started.stdout + started.stderr + worker_output
    assert started.stdout.splitlines()[-1] == "['RUNTIME-4/mercury/3', 'RUNTIME-5/venus/3']"
