"""Build and install distributions the way users do, offline: a copy of this repo, ``python -m
build --no-isolation`` (this venv's hatchling), and a fresh venv that gets the wheels with pip.

The fresh venv reaches wfkit's dependencies (pydantic, SQLAlchemy, psycopg, ...) through a
``.pth`` line naming this venv's site-packages as a plain directory. Python processes no
``.pth`` file inside a directory added that way, so the editable install of the repo there
stays inert, and ``wfkit`` comes only from the wheel installed into the fresh venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPS_PTH = "wfkit_test_dependencies.pth"


def copy_repo(dest: Path) -> Path:
    """Copy the tracked and untracked-but-not-ignored files of this repo (no .venv, no .git);
    symlinks (``wfkit/runtime -> ../runtime`` and its siblings) stay symlinks."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = REPO / rel
        target = dest / rel
        if rel.startswith(".venv/"):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)
    return dest


def build_dist(
    project: Path, outdir: Path, *kinds: str, env: dict[str, str] | None = None
) -> list[Path]:
    """``python -m build --no-isolation [kinds] project``; returns the files it wrote.

    ``kinds`` are ``--wheel`` / ``--sdist``; none builds an sdist, then a wheel from it.
    """
    before = set(outdir.glob("*")) if outdir.exists() else set()
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check",
         *kinds, "--outdir", str(outdir), str(project)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted(set(outdir.glob("*")) - before)


def make_venv(path: Path, *wheels: Path) -> Path:
    """A fresh venv at ``path`` with ``wheels`` installed (no dependency resolution: the
    dependencies come from this venv, see the module docstring); returns its bin dir."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    bindir = path / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    ours = sysconfig.get_paths()["purelib"]
    (Path(purelib) / DEPS_PTH).write_text(ours + "\n")
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
         *map(str, wheels)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return bindir
