"""The pytest plugin as users meet it: auto-loaded from the installed package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.testing_kit.conftest import PROJECT


def _project_pytest(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_example_projects_own_suite_passes_with_time_skipping() -> None:
    done = _project_pytest()
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b12 passed\b", done.stdout), done.stdout
    walls = dict(re.findall(r"WALL (\w[\w ]*?) ([\d.]+)s", done.stdout))
    # SCENARIOS 39: a day's sleep, an hour's retry delay, a 30-day timeout: wall time
    assert set(walls) >= {"checkout", "retry", "timeout", "local checkout"}
    assert all(float(seconds) < 1.0 for seconds in walls.values()), walls


def test_the_plugin_is_registered_by_entry_point() -> None:
    from importlib.metadata import entry_points

    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "wfkit"]
    assert plugin.value == "wfkit.testing.plugin"


def test_the_plugin_loads_nothing_heavy() -> None:
    code = "import sys, wfkit.testing.plugin; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = {"sqlalchemy", "pydantic", "libcst", "wfkit.runtime", "wfkit.worlds", "wfbuild"}
    assert not heavy & set(loaded)


def test_an_unknown_marker_option_is_a_one_line_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.wfkit]\npaths = []\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.wfkit(wrld="local")
        def test_it(wf_env):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*@pytest.mark.wfkit: unknown option(s) [[]'wrld'[]]*"])
    assert "Traceback" not in result.stdout.str()
    assert result.ret != 0


def test_a_project_without_tool_wfkit_is_told_what_to_add(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[project]\nname = 'x'\n")
    pytester.makepyfile("def test_it(wf_env):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*no pyproject.toml with a [[]tool.wfkit[]] table*"])
    assert "Traceback" not in result.stdout.str()
    assert result.ret != 0


def test_a_plain_folder_project_built_once_needs_no_pyproject(pytester: pytest.Pytester) -> None:
    """No pyproject.toml anywhere: the folder ``wfbuild build`` ran in (it holds
    ``.wfkit/``) is the project, as for the CLI; its workflows run in ``wf_env``."""
    import wfbuild

    module = f"plainflows_{uuid.uuid4().hex[:8]}"
    pytester.makepyfile(
        **{
            module: """
            async def add_one(n: int) -> int:
                "use step"
                return n + 1

            async def twice(n: int) -> int:
                "use workflow"
                return await add_one(await add_one(n))
            """,
            "test_plain": f"""
            from {module} import twice

            def test_it(wf_env):
                run = wf_env.start(twice, 1)
                assert wf_env.result(run) == 3
                wf_env.assert_steps(run, ["add_one", "add_one"])
            """,
        }
    )
    wfbuild.build(root=pytester.path)
    assert (pytester.path / ".wfkit").is_dir()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_postgres_without_a_url_is_a_one_line_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WFKIT_TEST_POSTGRES_URL", raising=False)
    pytester.makepyprojecttoml("[tool.wfkit]\npaths = []\n")
    pytester.makepyfile("def test_it(wf_env):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--wfkit-world=postgres")
    result.stdout.fnmatch_lines(["*wf_env: no postgres world: *needs a URL*"])
    assert "Traceback" not in result.stdout.str()


def test_tests_without_the_fixture_are_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys
        def test_plain():
            assert "wfkit.testing.plugin" in sys.modules  # auto-loaded...
            assert "wfkit.testing.env" not in sys.modules  # ...and nothing more
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_world_option_picks_the_local_world(tmp_path: Path) -> None:
    done = _project_pytest("--wfkit-world=local", "-k", "mock_is_gone or golden")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b2 passed\b", done.stdout), done.stdout
