"""wfkit's types as a user's ``mypy --strict`` sees them.

One mypy run checks three files: the README's Python blocks (as one module, in the
order a reader meets them, so a block may use what an earlier one defined; a block
whose first line is ``# mypy: skip`` is left out), ``typed_usage.py`` (correct uses:
no error allowed) and ``type_errors.py`` (each line ending ``# error: <code>`` must be
reported with that code, and nothing else). wfkit's own modules are followed silently,
as an installed package's are.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SKIP = "# mypy: skip"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
_EXPECTED = re.compile(r"#\s*error:\s*([\w-]+)\s*$")
_REPORTED = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<text>.*?)(?:  \[(?P<code>[\w-]+)\])?$"
)


def readme_module(readme: Path) -> tuple[str, dict[int, int]]:
    """The README's Python blocks as one module, and each module line's README line."""
    text = readme.read_text(encoding="utf-8")
    lines: list[str] = []
    origin: dict[int, int] = {}
    for block in _BLOCK.finditer(text):
        body = block.group(1)
        if body.lstrip().startswith(SKIP):
            continue
        first = text.count("\n", 0, block.start(1)) + 1
        for offset, line in enumerate(body.splitlines()):
            lines.append(line)
            origin[len(lines)] = first + offset
        lines.append("")
    return "\n".join(lines) + "\n", origin


def run_mypy(tmp_path: Path, files: list[Path]) -> dict[str, list[tuple[int, str, str]]]:
    """mypy --strict over ``files`` (one run); its errors by file name: (line, code, text)."""
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n", encoding="utf-8")  # the user's view: no project settings
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--follow-imports=silent",
        "--no-error-summary",
        "--show-absolute-path",
        f"--config-file={config}",
        f"--cache-dir={tmp_path / 'mypy-cache'}",
        *map(str, files),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    errors: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for line in done.stdout.splitlines():
        match = _REPORTED.match(line)
        if match:
            name = Path(match["path"]).name
            errors[name].append((int(match["line"]), match["code"] or "", match["text"]))
    return errors


def test_readme_and_typed_usage_pass_and_every_deliberate_error_is_reported(
    tmp_path: Path,
) -> None:
    module, origin = readme_module(ROOT / "README.md")
    readme = tmp_path / "readme_examples.py"
    readme.write_text(module, encoding="utf-8")
    errors_file = HERE / "type_errors.py"
    expected = {
        number: match.group(1)
        for number, line in enumerate(errors_file.read_text().splitlines(), start=1)
        if (match := _EXPECTED.search(line))
    }
    assert len(expected) >= 10

    errors = run_mypy(tmp_path, [readme, HERE / "typed_usage.py", errors_file])

    in_readme = [
        f"README.md:{origin.get(n, '?')}: {text} [{code}]"
        for n, code, text in errors["readme_examples.py"]
    ]
    assert not in_readme, "the README's examples fail mypy --strict:\n" + "\n".join(in_readme)
    assert errors["typed_usage.py"] == []
    reported = {(n, code) for n, code, _text in errors["type_errors.py"]}
    assert reported == set(expected.items())


def test_the_readme_module_keeps_blocks_in_order_and_skips_marked_ones(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro\n```python\nx = 1\n```\n```bash\nls\n```\n"
        f"```python\n{SKIP}\nbroken(\n```\n```python\ny = x\n```\n",
        encoding="utf-8",
    )
    module, origin = readme_module(readme)
    assert module == "x = 1\n\ny = x\n\n"
    assert origin == {1: 3, 3: 13}
