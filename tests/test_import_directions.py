"""DESIGN.md §1: which of our packages may import which (an import scan), and which
heavy dependencies may load where (a subprocess check)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("wfkit", "transformer", "wfbuild", "runtime", "worlds", "hatch_plugin")


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


FOLDERS = ("transformer", "runtime", "worlds", "hatch_plugin")  # imported as wfkit.<folder>
OLD_TOP_LEVEL = set(FOLDERS)  # top-level names wfkit no longer installs


def _owner(imported: str) -> str | None:
    """Which of our folders a dotted import name lives in (None: not ours)."""
    parts = imported.split(".")
    if parts[0] == "wfbuild":
        return "wfbuild"
    if parts[0] != "wfkit":
        return None
    if len(parts) > 1 and parts[1] in FOLDERS:
        return parts[1]
    return "wfkit"


SQL_WORLDS = ("worlds/local/", "worlds/postgres/")


def _within(imported: str, package: str) -> bool:
    return imported == package or imported.startswith(package + ".")


def _allowed(package_file: str, imported: str, module_level: bool) -> bool:
    if imported.split(".")[0] in OLD_TOP_LEVEL:
        return False  # a pre-namespace name: it would import a user's module of that name
    head = _owner(imported)
    if head is None:
        return True
    owner = package_file.split("/")[0]
    if head == owner and owner != "worlds":
        return True
    if owner == "transformer":
        return False
    if owner in ("wfbuild", "hatch_plugin"):
        # `check --replay` loads the runtime, lazily, only when asked to replay logs
        replay_check = package_file == "wfbuild/cli.py" and not module_level
        return head == "transformer" or (
            replay_check and imported == "wfkit.runtime.tools.replay_check"
        )
    if owner == "worlds":
        if package_file == "worlds/__init__.py":
            return imported == "wfkit.worlds.base" or not module_level
        own_subpackage = "wfkit." + ".".join(Path(package_file).with_suffix("").parts[:2])
        if imported == "wfkit.worlds.base" or _within(imported, own_subpackage):
            return True
        # The SQL worlds share one SQL layer (which itself imports only worlds.base).
        return package_file.startswith(SQL_WORLDS) and _within(imported, "wfkit.worlds.sql")
    if owner == "runtime":
        if head == "worlds":
            return imported == "wfkit.worlds.base" or package_file == "runtime/world_config.py"
        return False
    if owner == "wfkit":
        return head in ("runtime", "worlds", "wfkit") or (head == "wfbuild" and not module_level)
    return False


def _package_files() -> list[Path]:
    # wfkit/runtime etc. are symlinks to the folders scanned under their own names
    return sorted(
        p for pkg in OURS for p in (ROOT / pkg).rglob("*.py")
        if pkg != "wfkit" or p.relative_to(ROOT / pkg).parts[0] not in FOLDERS
    )  # fmt: skip


@pytest.mark.parametrize("path", _package_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_import_directions(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    bad = [name for name, top in _imports(path) if not _allowed(rel, name, top)]
    assert not bad, f"{rel} imports {bad}, which DESIGN.md §1 forbids"


def test_rules_reject_a_forbidden_import() -> None:
    assert not _allowed("transformer/modes.py", "wfkit.runtime.gen", True)
    assert not _allowed("runtime/replay/session.py", "wfkit.worlds.local", True)
    assert not _allowed("worlds/local/events.py", "wfkit.worlds.memory", True)
    assert _allowed("worlds/local/events.py", "wfkit.worlds.sql", True)
    assert _allowed("worlds/postgres/writes.py", "wfkit.worlds.sql.codecs", True)
    assert not _allowed("worlds/sql/codecs.py", "wfkit.worlds.local.db", True)
    assert not _allowed("worlds/memory.py", "wfkit.worlds.sql", True)
    assert not _allowed("runtime/engine/worker.py", "wfkit.worlds.sql", True)
    assert not _allowed("wfkit/__init__.py", "wfbuild", True)
    assert _allowed("wfkit/__init__.py", "wfbuild", False)
    assert _allowed("runtime/world_config.py", "wfkit.worlds", True)
    assert not _allowed("runtime/api/client.py", "runtime.errors", True)  # the old name
    assert _allowed("wfbuild/cli.py", "wfkit.runtime.tools.replay_check", False)
    assert not _allowed("wfbuild/cli.py", "wfkit.runtime.tools.replay_check", True)
    assert not _allowed("wfbuild/engine.py", "wfkit.runtime.tools.replay_check", False)


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {".".join(name.split(".")[:2]) if name.startswith("wfkit.") else name.split(".")[0]
            for name in out}  # fmt: skip


def test_worker_side_never_loads_the_build_tools() -> None:
    loaded = _loaded_after(
        "import wfkit, wfkit.runtime.gen, wfkit.runtime.loading.loader, wfkit.worlds.base\n"
        "from wfkit import start, sleep, FatalError"
    )
    assert "wfkit.runtime" in loaded  # the check below would pass vacuously otherwise
    assert not loaded & {"libcst", "hatchling", "wfkit.transformer", "wfbuild"}


def test_build_side_never_loads_the_runtime() -> None:
    loaded = _loaded_after("import wfkit.transformer, wfbuild, wfkit.hatch_plugin.hooks")
    assert "wfkit.transformer" in loaded
    assert not loaded & {"sqlalchemy", "pydantic", "wfkit.runtime", "wfkit.worlds"}


def test_old_top_level_names_are_not_ours() -> None:
    """Outside the repo root, none of the pre-namespace names import (they are the user's)."""
    result = subprocess.run(
        [sys.executable, "-c", "import wfkit, wfkit.runtime, wfkit.worlds, wfkit.transformer\n"
         "import importlib.util as u\n"
         "print([n for n in ('runtime', 'worlds', 'transformer', 'hatch_plugin') if u.find_spec(n)])"],
        cwd=ROOT.parent, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == "[]"
