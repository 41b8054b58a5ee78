"""wfkit's own distributions: the wheel adds exactly ``wfkit`` and ``wfbuild`` to
site-packages, and a wheel built from the sdist is the same wheel (DESIGN.md §1)."""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.e2e.packaging import build_dist, copy_repo

pytestmark = pytest.mark.slow


def _contents(wheel: Path) -> dict[str, str]:
    """Every file of a wheel with its sha256, except RECORD (which lists those hashes)."""
    with zipfile.ZipFile(wheel) as archive:
        return {
            name: hashlib.sha256(archive.read(name)).hexdigest()
            for name in archive.namelist()
            if not name.endswith(".dist-info/RECORD")
        }


def test_the_wheel_adds_only_wfkit_and_wfbuild_and_the_sdist_rebuilds_it(tmp_path: Path) -> None:
    copy = copy_repo(tmp_path / "wfkit-copy")
    assert (copy / "wfkit" / "runtime").is_symlink()

    (wheel,) = build_dist(copy, tmp_path / "direct", "--wheel")
    names = set(_contents(wheel))
    assert {name.split("/", 1)[0] for name in names} == {
        "wfkit",
        "wfbuild",
        "wfkit-0.2.0.dist-info",
    }
    # The symlinked folders ship as real subpackages, with py.typed for type checkers.
    for required in (
        "wfkit/py.typed",
        "wfkit/runtime/gen.py",
        "wfkit/runtime/loading/loader.py",
        "wfkit/worlds/base/__init__.py",
        "wfkit/transformer/__init__.py",
        "wfkit/hatch_plugin/hooks.py",
        "wfbuild/__main__.py",
    ):
        assert required in names, required

    sdist_and_wheel = build_dist(copy, tmp_path / "via-sdist")  # sdist, then a wheel from it
    (sdist,) = [p for p in sdist_and_wheel if p.name.endswith(".tar.gz")]
    (rebuilt,) = [p for p in sdist_and_wheel if p.suffix == ".whl"]
    with tarfile.open(sdist) as archive:
        members = archive.getmembers()
    top = {m.name.split("/")[1] for m in members if m.name.count("/") >= 1}
    assert {"wfkit", "wfbuild", "pyproject.toml"} <= top
    assert not top & {"tests", "snapshots", "runtime", "worlds", ".wfkit"}
    assert not any(m.issym() for m in members)  # real files under wfkit/runtime/...
    assert _contents(rebuilt) == _contents(wheel)
