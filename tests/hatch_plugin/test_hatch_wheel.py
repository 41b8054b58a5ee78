"""The hook inside hatchling's builders (in-process): standard and editable wheels, sdists."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from hatchling.builders.sdist import SdistBuilder
from hatchling.builders.wheel import WheelBuilder

from wfkit.hatch_plugin.config import HookConfigError


def build_wheel(root: Path, version: str) -> Path:
    builder = WheelBuilder(str(root))
    (artifact,) = builder.build(directory=str(root / "dist"), versions=[version])
    return Path(artifact)


def test_standard_wheel_carries_bundles_and_manifest(demo_project: Path) -> None:
    wheel = build_wheel(demo_project, "standard")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("__wfkit_build__/manifest.json"))
    assert {"demoapp/__init__.py", "demoapp/flows.py", "demoapp/util.py"} <= names
    for mode in ("workflow", "step", "client"):
        assert f"__wfkit_build__/{mode}/demoapp/flows.py" in names
        assert f"__wfkit_build__/{mode}/demoapp/util.py" not in names
    assert not any(n.endswith("build-state.json") for n in names)
    assert len(names) == len(zipfile.ZipFile(wheel).namelist())  # no duplicate entries
    assert (
        manifest["workflows"]["demoapp/flows.py"]["pipeline"]["workflow"]
        == "workflow/demoapp/flows.py"
    )
    assert not (demo_project / ".wfkit").exists()  # standard wheels build in a temp dir


def test_without_client_modules(demo_project: Path) -> None:
    pyproject = demo_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'include-client = false\nout = "demoapp/_wfkit"\n')
    with zipfile.ZipFile(build_wheel(demo_project, "standard")) as archive:
        names = set(archive.namelist())
    assert "demoapp/_wfkit/manifest.json" in names
    assert "demoapp/_wfkit/step/demoapp/flows.py" in names
    assert not any(n.startswith("demoapp/_wfkit/client/") for n in names)


def test_editable_wheel_points_at_the_project_build(demo_project: Path) -> None:
    # dev-mode-dirs: a .pth editable wheel, which does not need the `editables` package.
    pyproject = demo_project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'packages = ["demoapp"]', 'packages = ["demoapp"]\ndev-mode-dirs = ["."]'
        )
    )
    with zipfile.ZipFile(build_wheel(demo_project, "editable")) as archive:
        pointer = json.loads(archive.read("__wfkit_build__/editable.json"))
        names = archive.namelist()
    build_dir = demo_project.resolve() / ".wfkit" / "build"
    assert pointer == {"build_dir": str(build_dir), "root": str(demo_project.resolve())}
    assert (build_dir / "manifest.json").is_file()
    assert (build_dir / "workflow" / "demoapp" / "flows.py").is_file()
    assert "_demo_app.pth" in names
    assert not any(n.startswith("demoapp/") for n in names)  # sources stay in the project


def test_source_errors_fail_the_build(demo_project: Path) -> None:
    (demo_project / "demoapp" / "bad.py").write_text('async def w() -> None:\n    "use stepp"\n')
    with pytest.raises(Exception, match=r"demoapp/bad\.py:2:5: error\["):
        build_wheel(demo_project, "standard")


def test_bad_config_fails_the_build(demo_project: Path) -> None:
    pyproject = demo_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "colour = 1\ninclude-client = 2\n")
    with pytest.raises(HookConfigError) as info:
        build_wheel(demo_project, "standard")
    assert len(info.value.errors) == 2


def _write_local_world(directory: Path) -> None:
    """What ``wfkit`` leaves in a project: the local world's database, WAL files, a build."""
    (directory / "build" / "workflow").mkdir(parents=True)
    (directory / "build" / "workflow" / "x.py").write_text("# generated")
    for name in ("wfkit.db", "wfkit.db-wal", "wfkit.db-shm"):
        (directory / name).write_bytes(b"users' data")


def test_wfkit_state_dirs_never_ship_in_an_sdist_or_a_wheel(demo_project: Path) -> None:
    _write_local_world(demo_project / ".wfkit")
    _write_local_world(demo_project / "demoapp" / ".wfkit")  # a worker run from the package dir
    (sdist,) = SdistBuilder(str(demo_project)).build(
        directory=str(demo_project / "dist"), versions=["standard"]
    )
    with tarfile.open(sdist) as archive:
        in_sdist = archive.getnames()
    assert any(n.endswith("demoapp/flows.py") for n in in_sdist)
    assert not [n for n in in_sdist if ".wfkit" in n]
    with zipfile.ZipFile(build_wheel(demo_project, "standard")) as archive:
        in_wheel = archive.namelist()
    assert "demoapp/flows.py" in in_wheel
    assert not [n for n in in_wheel if ".wfkit" in n]
