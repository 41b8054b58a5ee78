"""``python -m wfbuild``: exit codes, output, check and watch."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from wfbuild.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_build_prints_summary(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--root", str(project)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.startswith("wfbuild: 4 files (2 transformed), 2 workflows, 2 steps, 0 classes in ")


def test_build_errors_exit_1_with_diagnostics(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "app" / "bad.py").write_text('async def w() -> None:\n    "use stepp"\n')
    assert main(["build", "--root", str(project)]) == 1
    err = capsys.readouterr().err
    assert "app/bad.py:2:5: error[" in err
    assert "nothing written" in err
    assert not (project / ".wfkit").exists()


def test_bad_usage_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--root", str(project), str(project / "nope.py")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["build", "--root", str(project), "--jobs", "0"]) == 2
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_check(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--root", str(project)]) == 1  # missing
    assert "no build output" in capsys.readouterr().err
    assert main(["build", "--root", str(project), "-q"]) == 0
    assert main(["check", "--root", str(project)]) == 0  # fresh
    (project / "app" / "order.py").write_text('async def w() -> None:\n    "use workflow"\n')
    assert main(["check", "--root", str(project)]) == 1  # stale
    assert "app/order.py: changed" in capsys.readouterr().err


def test_out_dir_option(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    assert main(["build", "--root", str(project), "--out", str(out), "-q"]) == 0
    assert (out / "manifest.json").is_file()
    assert main(["check", "--root", str(project), "--out", str(out)]) == 0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    return env


def test_module_help_and_default_root(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wfbuild", "--help"], capture_output=True, text=True, env=_env()
    )
    assert result.returncode == 0
    assert "build" in result.stdout and "check" in result.stdout and "watch" in result.stdout


def test_watch_rebuilds_on_change(project: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "wfbuild", "watch"],
        cwd=project / "app",  # the root is found upward from the cwd
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    ) as proc:
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(
            target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True
        )
        reader.start()
        try:
            assert lines.get(timeout=30).startswith("wfbuild: 4 files (2 transformed)")
            assert "watching" in lines.get(timeout=10)
            time.sleep(0.5)
            (project / "app" / "order.py").write_text(
                'async def w() -> None:\n    "use workflow"\n'
            )
            line = lines.get(timeout=30)
            assert line.startswith("wfbuild: 4 files ("), line
            assert "2 workflows, 1 step," in line
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0
        reader.join(timeout=5)


def test_polling_fallback_sees_changes_but_not_the_build_dir(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wfbuild import watch

    monkeypatch.setattr(watch, "POLL_INTERVAL", 0.05)
    out_dir = project / ".wfkit" / "build"
    changes = watch._changes_polling([project], project, out_dir)

    def edit() -> None:
        time.sleep(0.2)
        (out_dir / "workflow").mkdir(parents=True)
        (out_dir / "workflow" / "x.py").write_text("ignored = 1\n")
        (project / ".hidden").mkdir()
        (project / ".hidden" / "y.py").write_text("ignored = 1\n")
        time.sleep(0.2)
        (project / "app" / "helpers.py").write_text("changed = 1\n")

    editor = threading.Thread(target=edit)
    started = time.monotonic()
    editor.start()
    next(changes)
    editor.join()
    assert time.monotonic() - started >= 0.4  # the ignored writes did not count
