"""The ``wfkit`` Hatch build hook: run wfbuild at wheel build time and ship its output.

Glue only: it validates ``[tool.hatch.build.hooks.wfkit]`` (`wfkit.hatch_plugin.config`)
and runs ``python -m wfbuild build`` (so exactly the discovery, transformer calls
and manifest of a CI build) into a temporary directory, then adds the output to
the wheel. Layout and the editable-install story: ``README.md`` here.

Why a subprocess rather than importing `wfbuild`: DESIGN.md §1 lets ``hatch_plugin``
import only ``transformer`` (``tests/test_import_directions.py`` enforces it), and
the build backend's process is no place for wfbuild's worker pool anyway (its
``__main__`` belongs to the build frontend). The cost is one interpreter start.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pathspec
from hatchling.builders.config import BuilderConfig
from hatchling.builders.hooks.plugin.interface import BuildHookInterface

from wfkit.hatch_plugin.config import HookConfig, parse_config

MODES = ("workflow", "step", "client")
STATE_DIR_PATTERN = ".wfkit/"
"""Any directory named ``.wfkit`` at any depth (gitignore syntax)."""
EDITABLE_POINTER = "editable.json"


class WfkitBuildError(Exception):
    """The project's workflow modules have errors; the message holds every diagnostic."""


class WfkitBuildHook(BuildHookInterface[BuilderConfig]):
    """Adds ``<out>/manifest.json`` and the generated bundles to wheels (standard and editable)."""

    PLUGIN_NAME = "wfkit"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._temp_dirs: list[Path] = []

    def _config(self) -> HookConfig:
        return parse_config(self.config)

    def _build(self, config: HookConfig, out_dir: Path) -> None:
        root = Path(self.root).resolve()
        command = [
            sys.executable,
            "-m",
            "wfbuild",
            "build",
            "--root",
            str(root),
            "--out",
            str(out_dir),
        ]
        command += [str(root / p) for p in config.paths]
        result = subprocess.run(command, capture_output=True, text=True, cwd=root, check=False)
        if result.returncode != 0:
            raise WfkitBuildError(
                f"`python -m wfbuild build` failed (exit {result.returncode}):\n"
                f"{result.stderr.rstrip()}"
            )
        if result.stderr.strip():  # warnings
            self.app.display_warning(result.stderr.rstrip())
        self.app.display_info(result.stdout.rstrip())

    def _temp_dir(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="wfkit-hatch-"))
        self._temp_dirs.append(path)
        return path

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Transform the project and add the output to the wheel being built.

        Standard wheels get ``<out>/manifest.json`` and ``<out>/{workflow,step,client}/``.
        Editable wheels get ``<out>/editable.json`` pointing at ``<root>/.wfkit/build``,
        which is built now and kept fresh afterwards by ``python -m wfbuild watch``.

        Raises:
            HookConfigError: the hook's table is invalid (every problem listed).
            WfkitBuildError: the sources have errors (every diagnostic listed).
        """
        config = self._config()  # validated for every target, so typos surface early
        self._exclude_state_dirs()
        if self.target_name != "wheel":
            return
        if version == "editable":
            self._initialize_editable(config, build_data)
            return
        out_dir = self._temp_dir() / "build"
        self._build(config, out_dir)
        force_include: dict[str, str] = build_data.setdefault("force_include", {})
        force_include[str(out_dir / "manifest.json")] = f"{config.out}/manifest.json"
        for mode in MODES:
            if mode == "client" and not config.include_client:
                continue
            if (out_dir / mode).is_dir():
                force_include[str(out_dir / mode)] = f"{config.out}/{mode}"

    def _exclude_state_dirs(self) -> None:
        """Keep every ``.wfkit/`` directory (the local world's SQLite database with users'
        data, its -wal and -shm files, build state) out of the sdist and the wheel.

        Hatch reads only the project's root ``.gitignore``, not the one wfkit writes into
        ``.wfkit/``, and a hook has no build-data key for exclusions; so the pattern joins
        the target's exclude spec, which Hatch consults for every file it walks after
        ``initialize``. Files a ``force-include`` names explicitly are still included.
        """
        config = self.build_config
        if config.path_is_excluded(".wfkit/wfkit.db"):  # already (another version of a target)
            return
        excluded = pathspec.GitIgnoreSpec.from_lines([STATE_DIR_PATTERN])
        current = config.exclude_spec
        vars(config)["exclude_spec"] = excluded if current is None else current + excluded

    def _initialize_editable(self, config: HookConfig, build_data: dict[str, Any]) -> None:
        root = Path(self.root).resolve()
        out_dir = root / ".wfkit" / "build"
        self._build(config, out_dir)
        pointer = self._temp_dir() / EDITABLE_POINTER
        body = {"build_dir": str(out_dir), "root": str(root)}
        pointer.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        # A non-empty force_include_editable replaces the configured force-include for
        # editable wheels, so start from the configured one.
        inclusion = dict(
            build_data.get("force_include_editable") or self.build_config.get_force_include()
        )
        inclusion[str(pointer)] = f"{config.out}/{EDITABLE_POINTER}"
        build_data["force_include_editable"] = inclusion

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """Delete the temporary build directories once the wheel is written."""
        for path in self._temp_dirs:
            shutil.rmtree(path, ignore_errors=True)
        self._temp_dirs.clear()
