"""Finding and loading a build: env var, project build, installed or editable wheel."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from wfkit.runtime.loading.loader import BUILD_ENV, WHEEL_BUILD_PACKAGE, find_build_dir


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cwd with no project and no build, and no WFKIT_BUILD_DIR."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv(BUILD_ENV, raising=False)
    return cwd


def _install_package(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    sys.modules.pop(WHEEL_BUILD_PACKAGE, None)


def test_no_build_anywhere_is_none(elsewhere: Path) -> None:
    assert find_build_dir() is None


def test_the_env_var_wins(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BUILD_ENV, str(elsewhere / "custom"))
    assert find_build_dir() == (elsewhere / "custom").resolve()


def test_an_installed_wheel_carries_its_build(
    elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / WHEEL_BUILD_PACKAGE
    package.mkdir(parents=True)
    (package / "manifest.json").write_text("{}")
    _install_package(tmp_path / "site", monkeypatch)
    assert find_build_dir() == package


def test_an_editable_install_points_at_the_projects_build(
    elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_build = tmp_path / "project" / ".wfkit" / "build"
    project_build.mkdir(parents=True)
    (project_build / "manifest.json").write_text("{}")
    package = tmp_path / "site" / WHEEL_BUILD_PACKAGE
    package.mkdir(parents=True)
    (package / "editable.json").write_text(
        json.dumps({"build_dir": str(project_build), "root": str(tmp_path / "project")})
    )
    _install_package(tmp_path / "site", monkeypatch)
    assert find_build_dir() == project_build
