"""Transform throughput: wfbuild over a generated tree of modules, cold and warm.

    python bench/transform.py [--modules 1000] [--jobs N]

Generates a project (most modules with workflows and steps, some plain helpers),
then times a cold build (empty build dir), a warm build (nothing changed: the
incremental cache answers everything) and a build after touching one module, all in
this process; then the same edit built by ``python -m wfbuild build`` in a new process,
as a developer runs it (interpreter start and imports included). The in-process edit
build pays for loading the transformer only if the cold build did not load it already.
Prints a table of files/s and lines/s (lines of all scanned sources).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import wfbuild

WORKFLOW_MODULE = '''\
"""Generated benchmark module {i}."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass


@dataclass
class Order{i}:
    order_id: str
    cents: int


async def charge_{i}(order_id: str, cents: int) -> str:
    "use step"
    if cents < 0:
        raise ValueError("negative amount")
    return f"receipt-{{order_id}}-{{cents}}"


async def notify_{i}(order_id: str, receipt: str) -> None:
    "use step"
    print(order_id, receipt)


async def reserve_{i}(order_id: str, items: list[str]) -> dict[str, int]:
    "use step"
    return {{item: len(item) for item in items}}


async def checkout_{i}(order_id: str, items: list[str]) -> dict[str, object]:
    "use workflow"
    started = time.time()
    reservation = await reserve_{i}(order_id, items)
    total = sum(reservation.values()) * 100
    receipt = await charge_{i}(order_id, total)
    if random.random() < 0.5:
        await notify_{i}(order_id, receipt)
    return {{"receipt": receipt, "total": total, "started": started}}


def helper_{i}(value: int) -> int:
    return value * {i}
'''

PLAIN_MODULE = '''\
"""Generated helper module {i} (no directives)."""


def scale_{i}(values: list[int]) -> list[int]:
    return [v * {i} for v in values]


class Thing{i}:
    def __init__(self, name: str) -> None:
        self.name = name

    def describe(self) -> str:
        return f"thing {{self.name}}"
'''


def generate(root: Path, modules: int) -> int:
    """Write ``modules`` modules (every fourth one plain); returns the total line count."""
    (root / "pyproject.toml").write_text('[project]\nname = "bench"\nversion = "0"\n')
    lines = 0
    for i in range(modules):
        package = root / "app" / f"pkg{i // 100:02}"
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").touch()
        text = (PLAIN_MODULE if i % 4 == 3 else WORKFLOW_MODULE).format(i=i)
        (package / f"mod{i:04}.py").write_text(text)
        lines += text.count("\n")
    return lines


@dataclass(frozen=True)
class Row:
    """One timed build."""

    files_scanned: int
    files_transformed: int
    seconds: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=1000)
    parser.add_argument(
        "--jobs", type=int, default=None, help="worker processes (default: CPU count)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wfkit-bench-") as tmp:
        root = Path(tmp)
        lines = generate(root, args.modules)
        rows: list[tuple[str, Row]] = []
        target = root / "app" / "pkg00" / "mod0000.py"
        for label in ("cold", "warm (unchanged)", "warm (1 file edited)"):
            if label.endswith("edited)"):
                target.write_text(target.read_text() + "\n# edited\n")
            report = wfbuild.build(root=root, jobs=args.jobs)
            rows.append(
                (label, Row(report.files_scanned, report.files_transformed, report.seconds))
            )
        target.write_text(target.read_text() + "\n# edited again\n")
        started = time.perf_counter()
        summary = subprocess.run(
            [sys.executable, "-m", "wfbuild", "build"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        seconds = time.perf_counter() - started
        counts = re.search(r"(\d+) files? \((\d+) transformed\)", summary)
        assert counts is not None, summary
        scanned, transformed = int(counts[1]), int(counts[2])
        rows.append(("edited, new process", Row(scanned, transformed, seconds)))
    print(f"wfbuild transform benchmark: {args.modules} modules, {lines} lines")
    header = (
        f"{'build':<22}{'files':>7}{'transformed':>13}{'seconds':>10}{'files/s':>11}{'lines/s':>12}"
    )
    print(header)
    print("-" * len(header))
    for label, report in rows:
        seconds = max(report.seconds, 1e-9)
        print(
            f"{label:<22}{report.files_scanned:>7}{report.files_transformed:>13}"
            f"{report.seconds:>10.3f}{report.files_scanned / seconds:>11,.0f}{lines / seconds:>12,.0f}"
        )


if __name__ == "__main__":
    main()
