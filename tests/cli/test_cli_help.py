"""Every ``wfkit`` subcommand and option explains itself, defaults included; the version."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

import wfkit
from wfkit.cli import build_parser

VENV_BIN = Path(sys.executable).parent


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def test_every_subcommand_and_option_has_help_text() -> None:
    parser = build_parser()
    missing = [a.dest for a in _arguments(parser) if not a.help]
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    described = {choice.dest: choice.help for choice in sub._choices_actions}
    for name, command in _subcommands().items():
        if not described.get(name):
            missing.append(name)
        missing += [f"{name} {a.dest}" for a in _arguments(command) if not a.help]
    assert not missing, f"no help text for: {missing}"


def test_help_shows_each_default() -> None:
    unshown = []
    for name, command in _subcommands().items():
        text = " ".join(command.format_help().split())
        for action in _arguments(command):
            if action.default is None or action.default is False or not action.option_strings:
                continue
            shown = command._get_formatter()._expand_help(action)
            if "default" not in shown:
                unshown.append(f"{name} {action.option_strings[0]}")
        assert "(default: None)" not in text, name
    assert not unshown, f"help does not show the default of: {unshown}"


def test_worker_help_reads_well() -> None:
    text = " ".join(_subcommands()["worker"].format_help().split())
    assert (
        "--concurrency CONCURRENCY how many runs and steps this worker works at once (default: 64)"
        in text
    )


def test_inspect_lists_its_kinds() -> None:
    out = subprocess.run(
        [VENV_BIN / "wfkit", "inspect", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for kind in ("runs", "steps", "events", "hooks", "waits", "streams"):
        assert kind in out


def test_version_from_the_package_metadata() -> None:
    expected = importlib.metadata.version("wfkit")
    assert wfkit.__version__ == expected
    assert "__version__" in wfkit.__all__
    out = subprocess.run(
        [VENV_BIN / "wfkit", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"wfkit {expected}"


@pytest.mark.parametrize("script", ["wfkit", "wfbuild"])
def test_console_scripts_are_installed(script: str) -> None:
    out = subprocess.run([VENV_BIN / script, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"usage: {script}" in out.stdout


BLOCKER = """import sys
for name in {blocked!r}:
    sys.modules[name] = None  # what `import name` meets when the package is not installed
"""


@pytest.mark.parametrize(
    ("args", "blocked", "extra"),
    [
        (["serve"], ["uvicorn", "starlette"], "web"),
        (["web", "--no-browser"], ["uvicorn", "starlette"], "web"),
        (["web", "--no-browser"], ["starlette"], "web"),
        (["--world", "postgresql://postgres@127.0.0.1:1/nowhere", "inspect", "runs"],
         ["psycopg"], "postgres"),
    ],
)  # fmt: skip
def test_a_missing_extra_is_one_line_naming_the_pip_command(
    tmp_path: Path, args: list[str], blocked: list[str], extra: str
) -> None:
    """The installed console script, with the optional packages made unimportable by a
    sitecustomize module (as if they were not installed)."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER.format(blocked=blocked))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env["PYTHONPATH"] = str(tmp_path)
    out = subprocess.run(
        [VENV_BIN / "wfkit", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    (line,) = out.stderr.splitlines()
    command = next(a for a in args if not a.startswith("-") and "/" not in a)
    assert line.startswith(f"wfkit {command}: this needs the '{extra}' extra (")
    assert line.endswith(f"is not installed): pip install 'wfkit[{extra}]'")
