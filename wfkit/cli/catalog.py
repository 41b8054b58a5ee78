"""``wfkit workflows``: the workflow IDs the project's build registers, with their source.

The manifest says which file defines each workflow but not the line (it is byte-stable
across edits that move a function); the line is read from the source file with ``ast``
when the file is there (a project), and left out when it is not (an installed wheel).
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

from wfkit.cli.common import Subcommands, add_command


def cmd_workflows(args: argparse.Namespace) -> int:
    """List the build's workflows: ID and ``file:line``."""
    from wfkit.runtime.loading.deployments import project_of_build
    from wfkit.runtime.loading.manifest import read_manifest
    from wfkit.runtime.loading.project import find_build_dir, find_root

    build_dir = Path(args.build).resolve() if args.build else find_build_dir()
    if build_dir is None or not (build_dir / "manifest.json").is_file():
        raise FileNotFoundError(
            f"no wfkit build at {build_dir or find_root() / '.wfkit' / 'build'}: run "
            "`python -m wfbuild build` first (or give --build PATH)"
        )
    manifest = read_manifest(build_dir)
    root = project_of_build(build_dir) or find_root()
    trees: dict[str, ast.Module | None] = {}
    rows = []
    for entry in sorted(manifest.of_kind("workflows"), key=lambda e: e.id):
        if entry.source not in trees:
            trees[entry.source] = _parse(root / entry.source)
        line = definition_line(trees[entry.source], entry.key)
        where = entry.source if line is None else f"{entry.source}:{line}"
        rows.append({"id": entry.id, "module": entry.module, "source": where})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no workflows in the build at {build_dir}")
        return 0
    width = max(len(row["id"]) for row in rows)
    for row in rows:
        print(f"{row['id']:<{width}}  {row['source']}")
    return 0


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None  # not in this tree (a wheel's build), or edited since the build


def definition_line(tree: ast.Module | None, key: str) -> int | None:
    """The line of the ``def`` a manifest key names (``pipeline``, ``outer/inner``,
    ``Class.method``, ``Class#method``), or None when the source does not have it."""
    if tree is None:
        return None
    node: ast.AST = tree
    for part in key.replace("#", ".").replace("/", ".").split("."):
        found = next(
            (
                child
                for child in ast.walk(node)
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and child.name == part
                and child is not node
            ),
            None,
        )
        if found is None:
            return None
        node = found
    return getattr(node, "lineno", None)


def register(sub: Subcommands) -> None:
    """Add ``workflows`` to the ``wfkit`` parser."""
    p = add_command(
        sub,
        "workflows",
        help="the workflow IDs the build registers, with their source file:line",
    )
    p.add_argument(
        "--build",
        default=None,
        metavar="PATH",
        help="the build to read (default: $WFKIT_BUILD_DIR, <project>/.wfkit/build or an "
        "installed wheel's build)",
    )
    p.add_argument("--json", action="store_true", help="print JSON rows instead of lines")
    p.set_defaults(func=cmd_workflows)
