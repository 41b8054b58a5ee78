"""The pytest plugin (registered as ``wfkit`` under ``pytest11``): the ``wf_env`` fixture.

Loaded into every pytest session of an environment where wfkit is installed, so it
imports only pytest at load time and changes nothing unless a test uses its
fixtures: the build, the world and the worker are made on first use.

Options (command line, or ``[tool.pytest.ini_options]`` through ``addopts``)::

    --wfkit-world=memory|local|postgres   the world each test gets (default memory)
    --wfkit-postgres-url=URL              the Postgres server (default $WFKIT_TEST_POSTGRES_URL)
    --wfkit-build-dir=DIR                 a build to load instead of building the project

Per test: ``@pytest.mark.wfkit(world="local", real_time=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from wfkit.testing.env import WorkflowEnv

__all__ = ["pytest_addoption", "pytest_configure", "wf_env", "wfkit_build"]

_WORLDS = ("memory", "local", "postgres")
_MARK_KEYS = frozenset({"world", "real_time"})


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wfkit", "wfkit workflow tests (the wf_env fixture)")
    group.addoption(
        "--wfkit-world",
        choices=_WORLDS,
        default=None,
        help="world for the wf_env fixture: memory (default), local (a SQLite file in "
        "the test's tmp dir) or postgres (a schema of its own, dropped after)",
    )
    group.addoption(
        "--wfkit-postgres-url",
        default=None,
        help="Postgres server for --wfkit-world=postgres (default: $WFKIT_TEST_POSTGRES_URL)",
    )
    group.addoption(
        "--wfkit-build-dir",
        default=None,
        help="load this wfkit build instead of building the project found from the "
        "rootdir (default: build it into a temporary directory)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "wfkit(world=None, real_time=False): the wf_env fixture's world (memory, local, "
        "postgres) and whether it runs in real time instead of skipping idle time",
    )


@pytest.fixture(scope="session")
def wfkit_build(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wfkit build, loaded into this process (once per session).

    The project is the nearest directory at or above pytest's rootdir whose
    pyproject.toml has a ``[tool.wfkit]`` table; it is built into a temporary
    directory. ``--wfkit-build-dir`` loads a given build instead. Override this
    fixture to load a build your own way.
    """
    from wfkit.runtime.loading.loader import load_build

    given = request.config.getoption("--wfkit-build-dir")
    if given:
        return load_build(Path(given)).build_dir
    root = _project_root(request.config.rootpath)
    import wfbuild

    out = tmp_path_factory.mktemp("wfkit-build")
    try:
        wfbuild.build(root=root, out=out)
    except wfbuild.BuildError as exc:
        pytest.fail(f"wfkit build of {root} failed:\n{exc}", pytrace=False)
    return load_build(out, root=root).build_dir


def _project_root(start: Path) -> Path:
    """The nearest directory from ``start`` up with ``[tool.wfkit]`` in its pyproject.toml;
    with no pyproject.toml at all, a plain-folder project that ``wfbuild build`` built
    (the root ``find_root`` gives: the nearest directory holding ``.wfkit/``)."""
    import tomllib

    from wfkit.runtime.loading.project import STATE_DIR, find_root

    any_pyproject = False
    for directory in (start, *start.parents):
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            any_pyproject = True
            with pyproject.open("rb") as handle:
                if "wfkit" in tomllib.load(handle).get("tool", {}):
                    return directory
    if not any_pyproject and (find_root(start) / STATE_DIR).is_dir():
        return find_root(start)
    pytest.fail(
        f"wf_env: no pyproject.toml with a [tool.wfkit] table at or above {start}; "
        "add one (tool.wfkit.paths lists the workflow modules), run `wfbuild build` "
        "once at the root of a project that is a plain folder, or pass --wfkit-build-dir",
        pytrace=False,
    )


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("wfkit")
    if marker is None:
        return {}
    if marker.args:
        pytest.fail("@pytest.mark.wfkit takes keywords only: world=, real_time=", pytrace=False)
    unknown = set(marker.kwargs) - _MARK_KEYS
    if unknown:
        pytest.fail(
            f"@pytest.mark.wfkit: unknown option(s) {sorted(unknown)}; use world=, real_time=",
            pytrace=False,
        )
    return dict(marker.kwargs)


@pytest.fixture
def wf_env(
    request: pytest.FixtureRequest, wfkit_build: Path, tmp_path: Path
) -> Iterator[WorkflowEnv]:
    """An isolated world with an in-process worker and the project's build loaded.

    Memory world and time skipping by default; ``--wfkit-world`` or
    ``@pytest.mark.wfkit(world=..., real_time=True)`` change that. Mocks, the clock
    and the world are undone when the test ends.
    """
    from wfkit.testing.env import WorkflowEnv, create_test_world
    from wfkit.worlds.base import WfkitError

    options = _marker_options(request)
    kind = options.get("world") or request.config.getoption("--wfkit-world") or "memory"
    if kind not in _WORLDS:
        pytest.fail(f"@pytest.mark.wfkit(world={kind!r}): choose one of {_WORLDS}", pytrace=False)
    url = request.config.getoption("--wfkit-postgres-url") or os.environ.get(
        "WFKIT_TEST_POSTGRES_URL"
    )
    real_time = bool(options.get("real_time", False)) or kind == "postgres"
    try:
        world = create_test_world(kind, directory=tmp_path, postgres_url=url)
    except (ValueError, WfkitError) as exc:
        pytest.fail(f"wf_env: no {kind} world: {exc}", pytrace=False)
    try:
        env = WorkflowEnv(world, time_skipping=not real_time)
    except BaseException:
        world.close()
        raise
    with env:
        yield env
