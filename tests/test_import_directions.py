"""DESIGN.md §1: which of our packages may import which (an import scan), and which
heavy dependencies may load where (a subprocess check)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"wfkit", "transformer", "wfbuild", "runtime", "worlds", "hatch_plugin"}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported dotted name, at module level?) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # imports guarded by `if TYPE_CHECKING:` count as module level
        if isinstance(node, ast.If):
            top_level.update(id(child) for child in node.body)
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top_level))
    return found


def _allowed(package_file: str, imported: str, module_level: bool) -> bool:
    head = imported.split(".")[0]
    if head not in OURS:
        return True
    owner = package_file.split("/")[0]
    if head == owner and owner != "worlds":
        return True
    if owner == "transformer":
        return False
    if owner in ("wfbuild", "hatch_plugin"):
        return head == "transformer"
    if owner == "worlds":
        if package_file == "worlds/__init__.py":
            return imported == "worlds.base" or not module_level
        own_subpackage = ".".join(Path(package_file).with_suffix("").parts[:2])
        return imported == "worlds.base" or imported.startswith(own_subpackage)
    if owner == "runtime":
        if head == "worlds":
            return imported == "worlds.base" or package_file == "runtime/world_config.py"
        return False
    if owner == "wfkit":
        return head in ("runtime", "worlds") or (head == "wfbuild" and not module_level)
    return False


def _package_files() -> list[Path]:
    return sorted(p for pkg in OURS for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _package_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_import_directions(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    bad = [name for name, top in _imports(path) if not _allowed(rel, name, top)]
    assert not bad, f"{rel} imports {bad}, which DESIGN.md §1 forbids"


def test_rules_reject_a_forbidden_import() -> None:
    assert not _allowed("transformer/modes.py", "runtime.gen", True)
    assert not _allowed("runtime/replay.py", "worlds.local", True)
    assert not _allowed("worlds/local/events.py", "worlds.memory", True)
    assert not _allowed("wfkit/__init__.py", "wfbuild", True)
    assert _allowed("wfkit/__init__.py", "wfbuild", False)
    assert _allowed("runtime/world_config.py", "worlds", True)


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    return {name.split(".")[0] for name in out}


def test_worker_side_never_loads_the_build_tools() -> None:
    loaded = _loaded_after("import runtime.gen, runtime.registry, runtime.loader, worlds.base")
    assert not loaded & {"libcst", "hatchling", "transformer", "wfbuild"}


def test_build_side_never_loads_sqlalchemy() -> None:
    loaded = _loaded_after("import transformer, wfbuild")
    assert "sqlalchemy" not in loaded
    assert not loaded & {"runtime", "worlds"}
