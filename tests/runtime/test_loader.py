"""Finding, reading and loading a build (env var, project build, installed or editable
wheel), resolving the IDs of the user's functions through its manifest, and refusing an
incomplete build."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

import wfbuild
from tests.e2e.wheel_project import build_project, unique_package, write_project
from wfkit.runtime.errors import InvalidBuildError, WorkflowNotRegisteredError
from wfkit.runtime.loading import registry
from wfkit.runtime.loading.loader import (
    BUILD_ENV,
    PREFIXES,
    WHEEL_BUILD_PACKAGE,
    find_build_dir,
    find_root,
    load_build,
    loaded_manifests,
)
from wfkit.runtime.loading.manifest import read_manifest
from wfkit.runtime.loading.project import ensure_state_dir
from wfkit.runtime.loading.resolve import (
    manifest_keys,
    step_function_for,
    step_id_for,
    workflow_id_for,
    workflow_id_named,
)


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cwd with no project and no build, and no WFKIT_BUILD_DIR."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv(BUILD_ENV, raising=False)
    return cwd


def _install_package(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    sys.modules.pop(WHEEL_BUILD_PACKAGE, None)


def test_no_build_anywhere_is_none(elsewhere: Path) -> None:
    assert find_build_dir() is None


def test_the_env_var_wins(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BUILD_ENV, str(elsewhere / "custom"))
    assert find_build_dir() == (elsewhere / "custom").resolve()


def test_an_installed_wheel_carries_its_build(
    elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / WHEEL_BUILD_PACKAGE
    package.mkdir(parents=True)
    (package / "manifest.json").write_text("{}")
    _install_package(tmp_path / "site", monkeypatch)
    assert find_build_dir() == package


def test_an_editable_install_points_at_the_projects_build(
    elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_build = tmp_path / "project" / ".wfkit" / "build"
    project_build.mkdir(parents=True)
    (project_build / "manifest.json").write_text("{}")
    package = tmp_path / "site" / WHEEL_BUILD_PACKAGE
    package.mkdir(parents=True)
    (package / "editable.json").write_text(
        json.dumps({"build_dir": str(project_build), "root": str(tmp_path / "project")})
    )
    _install_package(tmp_path / "site", monkeypatch)
    assert find_build_dir() == project_build


# --- the project root and .wfkit/ ---------------------------------------------------------


def test_the_root_is_the_nearest_pyproject_from_any_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    deep = tmp_path / "app" / "sub"
    deep.mkdir(parents=True)
    assert find_root(deep) == tmp_path.resolve()
    assert find_root(deep / "nothing-here.py") == tmp_path.resolve()
    assert find_root(tmp_path.parent / "elsewhere") == (tmp_path.parent / "elsewhere").resolve()


def test_without_a_pyproject_the_root_is_the_nearest_folder_holding_wfkit_state(
    tmp_path: Path,
) -> None:
    """A project that is a plain folder: its first build made ``.wfkit/`` at its root, so
    a command run from a subdirectory opens that world, not a second, empty one."""
    plain = tmp_path / "plain"
    deep = plain / "app" / "sub"
    deep.mkdir(parents=True)
    assert find_root(deep) == deep.resolve()  # nothing marks a root yet
    (plain / ".wfkit").mkdir()
    assert find_root(deep) == plain.resolve()
    assert wfbuild.find_root(deep) == plain.resolve()  # the build finds the same root
    # A pyproject.toml anywhere above still wins over a .wfkit/ nearer by.
    (deep / ".wfkit").mkdir()
    (plain / "pyproject.toml").write_text("")
    assert find_root(deep) == plain.resolve()


def test_state_dir_gets_a_gitignore_and_keeps_one_the_user_edited(tmp_path: Path) -> None:
    state = ensure_state_dir(tmp_path)
    assert state == tmp_path / ".wfkit"
    assert (state / ".gitignore").read_text() == "*\n"
    (state / ".gitignore").write_text("*\n!notes.md\n")
    ensure_state_dir(tmp_path)
    assert (state / ".gitignore").read_text() == "*\n!notes.md\n"


def test_a_build_into_the_project_gives_wfkit_dir_its_gitignore(tmp_path: Path) -> None:
    root = write_project(tmp_path / "project", unique_package())
    build_project(root)
    assert (root / ".wfkit" / ".gitignore").read_text() == "*\n"
    assert (root / ".wfkit" / "build" / "manifest.json").is_file()


# --- manifests ----------------------------------------------------------------------------


def test_a_malformed_manifest_lists_every_problem(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "workflows": {"a.py": {"w": {"module": "a"}, "v": {"id": "workflow//./a//v"}}},
                "steps": [],
                "classes": {"a.py": {"C": {"id": "class//./a//C", "module": "a",
                                           "step": "../../etc/passwd"}}},
            }
        )
    )  # fmt: skip
    with pytest.raises(InvalidBuildError) as info:
        read_manifest(tmp_path)
    message = str(info.value)
    assert "workflows['a.py']['w']: missing its 'id'" in message
    assert "workflows['a.py']['v']: missing its 'module'" in message
    assert "steps: expected an object" in message
    assert "classes['a.py']['C']: generated module path '../../etc/passwd' is outside" in message
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(InvalidBuildError, match="is not valid JSON"):
        read_manifest(tmp_path)


def test_manifest_entries_are_found_by_id_and_by_module_and_key(tmp_path: Path) -> None:
    package = unique_package()
    manifest = read_manifest(build_project(write_project(tmp_path / "p", package)))
    pipeline = manifest.find("workflows", f"{package}.jobs", "pipeline")
    assert pipeline is not None and pipeline.id == f"workflow//./{package}/jobs//pipeline"
    assert pipeline.source == f"{package}/jobs.py"
    assert pipeline.files["step"] == f"step/{package}/jobs.py"
    assert manifest.find_id(pipeline.id) is pipeline
    method = manifest.find("steps", f"{package}.models", "Parcel#heavier")
    assert method is not None and method.id == f"step//./{package}/models//Parcel#heavier"
    assert manifest.find("workflows", f"{package}.models", "pipeline") is None
    assert manifest.modules() == [
        (f"{package}/jobs.py", f"{package}.jobs"),
        (f"{package}/models.py", f"{package}.models"),
    ]
    assert manifest.missing_files() == []


@pytest.mark.parametrize(
    ("qualname", "keys"),
    [
        ("pipeline", ["pipeline"]),
        ("Parcel.heavier", ["Parcel.heavier", "Parcel#heavier"]),
        ("closures.<locals>.combine", ["closures/combine"]),
        ("Box.run.<locals>.inner", ["Box.run/inner", "Box#run/inner"]),
    ],
)
def test_manifest_keys_of_a_qualname(qualname: str, keys: list[str]) -> None:
    assert manifest_keys(qualname) == keys


# --- resolving the user's functions ------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A built (not loaded) project whose package is importable; cwd elsewhere."""
    package = unique_package()
    root = write_project(tmp_path / "project", package)
    build_project(root)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv(BUILD_ENV, raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return root, package


def test_ids_of_the_users_functions_come_from_the_manifest(app: tuple[Path, str]) -> None:
    root, package = app
    jobs = importlib.import_module(f"{package}.jobs")
    models = importlib.import_module(f"{package}.models")
    # Found from the functions' own project (the cwd is elsewhere), by module and qualname.
    assert workflow_id_for(jobs.pipeline) == f"workflow//./{package}/jobs//pipeline"
    assert step_id_for(models.weigh) == f"step//./{package}/models//weigh"
    assert step_id_for(models.Parcel.heavier) == f"step//./{package}/models//Parcel#heavier"
    assert step_id_for(models.Parcel("a", 1).heavier) == (
        f"step//./{package}/models//Parcel#heavier"
    )
    assert step_id_for(jobs.kinds) is None  # a plain function
    # A step ID read back in client code (no function to start from): the cwd's build.
    assert step_function_for(f"step//./{package}/models//weigh") is None
    os.chdir(root)
    assert step_function_for(f"step//./{package}/models//weigh") is models.weigh
    assert step_function_for(f"step//./{package}/models//Parcel#heavier") is (models.Parcel.heavier)
    assert step_function_for("step//./nowhere//x") is None


def test_a_function_no_build_lists_is_a_clear_error(app: tuple[Path, str]) -> None:
    _root, package = app
    jobs = importlib.import_module(f"{package}.jobs")
    with pytest.raises(WorkflowNotRegisteredError) as info:
        workflow_id_for(jobs.kinds)  # a plain function
    message = str(info.value)
    assert f"{package}.jobs.kinds is not a workflow in any wfkit build" in message
    assert "python -m wfbuild build" in message and ".wfkit/build" in message
    with pytest.raises(WorkflowNotRegisteredError, match=r"\.jobs\.pack is a step \(step//"):
        workflow_id_for(jobs.pack)  # a step, not a workflow


def test_a_script_run_as_main_is_matched_by_its_source_file(app: tuple[Path, str]) -> None:
    root, package = app
    source = root / package / "jobs.py"
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source.read_text(), str(source), "exec"), namespace)
    assert namespace["pipeline"].__module__ == "__main__"
    assert workflow_id_for(namespace["pipeline"]) == f"workflow//./{package}/jobs//pipeline"


def test_workflow_names_from_the_command_line(app: tuple[Path, str]) -> None:
    root, package = app
    os.chdir(root / package)  # from a subdirectory of the project
    assert workflow_id_named(f"{package}.jobs:pipeline") == f"workflow//./{package}/jobs//pipeline"
    assert workflow_id_named("workflow//./x//y") == "workflow//./x//y"
    with pytest.raises(WorkflowNotRegisteredError, match=rf"{package}\.jobs\.nope is not a"):
        workflow_id_named(f"{package}.jobs:nope")
    with pytest.raises(ValueError, match="neither a workflow ID"):
        workflow_id_named("pipeline")


# --- loading ------------------------------------------------------------------------------


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, str]:
    """(root, build dir, package) of a freshly built project, importable, not loaded."""
    package = unique_package()
    root = write_project(tmp_path / "project", package)
    build = build_project(root)
    monkeypatch.syspath_prepend(str(root))
    return root, build, package


def _twins_of(package: str) -> list[str]:
    return [
        n for n in sys.modules if n.startswith(tuple(f"{p}.{package}" for p in PREFIXES.values()))
    ]


def test_a_missing_generated_module_refuses_the_build_before_importing(
    built: tuple[Path, Path, str],
) -> None:
    _root, build, package = built
    (build / "step" / package / "models.py").unlink()
    (build / "workflow" / package / "jobs.py").unlink()
    with pytest.raises(InvalidBuildError) as info:
        load_build(build)
    message = str(info.value)
    assert f"the build at {build.resolve()} is incomplete" in message
    assert f"missing generated module step/{package}/models.py ({package}.models)" in message
    assert f"missing generated module workflow/{package}/jobs.py ({package}.jobs)" in message
    assert _twins_of(package) == []
    assert build.resolve() not in [m.build_dir for m in loaded_manifests()]


def test_a_missing_source_module_refuses_the_build(built: tuple[Path, Path, str]) -> None:
    root, build, package = built
    (root / package / "jobs.py").unlink()
    with pytest.raises(InvalidBuildError, match=rf"missing source module {package}\.jobs "):
        load_build(build)
    assert _twins_of(package) == []


def test_a_module_that_registers_less_than_its_manifest_is_refused(
    built: tuple[Path, Path, str],
) -> None:
    _root, build, package = built
    generated = build / "workflow" / package / "jobs.py"
    registration = f'__wfkit__.register_workflow("workflow//./{package}/jobs//pipeline", pipeline)'
    assert registration in generated.read_text()
    generated.write_text(generated.read_text().replace(registration, "pass"))
    with pytest.raises(InvalidBuildError) as info:
        load_build(build)
    assert "does not match its manifest" in str(info.value)
    assert f"workflow workflow//./{package}/jobs//pipeline (workflow/{package}/jobs.py)" in str(
        info.value
    )


def test_step_twins_use_the_users_classes_and_methods(built: tuple[Path, Path, str]) -> None:
    _root, build, package = built
    load_build(build)
    models = importlib.import_module(f"{package}.models")
    step_twin = sys.modules[f"__wfkit_step__.{package}.models"]
    workflow_twin = sys.modules[f"__wfkit_workflow__.{package}.models"]
    for name in ("Parcel", "Quote", "Money", "Overweight"):
        assert getattr(step_twin, name) is getattr(models, name), name
        assert getattr(workflow_twin, name) is not getattr(models, name), name
    method = registry.get_step(f"step//./{package}/models//Parcel#heavier")
    assert method.fn is models.Parcel.heavier and method.method
    assert registry.has_twins(f"{package}.models") and registry.has_twins(f"{package}.jobs")


def test_a_wheel_layout_names_the_installed_files_and_adds_no_cwd(
    built: tuple[Path, Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, build, package = built
    site = tmp_path / "site-packages"
    shutil.copytree(root / package, site / package)
    shutil.copytree(build, site / WHEEL_BUILD_PACKAGE)
    monkeypatch.syspath_prepend(str(site))
    sys.path.remove(str(root))  # only the "installed" copy is importable now
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    load_build(site / WHEEL_BUILD_PACKAGE)
    pipeline = registry.get_workflow(f"workflow//./{package}/jobs//pipeline")
    assert pipeline.__code__.co_filename == str(site / package / "jobs.py")
    assert importlib.import_module(f"{package}.jobs").__file__ == str(site / package / "jobs.py")
    assert str(cwd) not in sys.path and "" not in sys.path[:1]


def test_not_registered_says_restart_when_the_build_was_rebuilt_since(
    built: tuple[Path, Path, str],
) -> None:
    """A worker that loaded the build before a rebuild added a workflow: the error says to
    restart it, not to rebuild (the build on disk has the ID already)."""
    import wfbuild

    root, build, package = built
    load_build(build)
    added = f"workflow//./{package}/jobs//added_later"
    with pytest.raises(WorkflowNotRegisteredError, match="Rebuild with `python -m wfbuild"):
        registry.get_workflow(added)  # not on disk either: rebuilding is what is missing

    jobs = root / package / "jobs.py"
    jobs.write_text(
        jobs.read_text() + '\n\nasync def added_later() -> int:\n    "use workflow"\n    return 1\n'
    )
    wfbuild.build(root=root, jobs=1)
    assert read_manifest(build).find_id(added) is not None
    with pytest.raises(WorkflowNotRegisteredError) as info:
        registry.get_workflow(added)
    assert str(info.value) == (
        f'Workflow "{added}" is not registered: the build at {build.resolve()} lists it now, '
        "but this process loaded that build before it was rebuilt: restart the worker "
        "(`wfkit dev` restarts it on every build)."
    )


def test_start_of_a_plain_function_or_a_step_raises_at_once(built: tuple[Path, Path, str]) -> None:
    from wfkit import start_sync
    from wfkit.worlds.memory import MemoryWorld

    _root, _build, package = built
    jobs = importlib.import_module(f"{package}.jobs")
    world = MemoryWorld()
    with pytest.raises(WorkflowNotRegisteredError) as plain:
        start_sync(jobs.kinds, 1, world=world)
    assert str(plain.value).startswith(
        f"{package}.jobs.kinds is not a workflow in any wfkit build (the build(s) at "
    )
    with pytest.raises(WorkflowNotRegisteredError) as step:
        start_sync(jobs.pack, 1, world=world)
    assert str(step.value) == (
        f"{package}.jobs.pack is a step (step//./{package}/jobs//pack), not a workflow: a step "
        "runs when a workflow calls it; start the workflow that calls it"
    )
    assert world.runs.list() == []  # nothing was written
