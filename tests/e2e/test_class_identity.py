"""Class identity across boundaries on every world, in one process: a value of a user class
(dataclass, pydantic model, ``__wfkit_serialize__`` class, exception) arrives as an instance
of the class the receiving code imported, in the client, in steps and in workflows.

The project is the throwaway ``myapp`` of the installed-wheel test, under a unique package
name, built from source and loaded into this process; functions are started as the user's
own functions (their IDs come from the manifest). ``test_installed_wheel`` does the same
across processes with the wheel installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.e2e.conftest import run_async, run_to_end
from tests.e2e.wheel_project import build_project, unique_package, write_project
from wfkit import WorkflowRunFailedError
from wfkit.runtime.loading.loader import load_build


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, ModuleType]]:
    """(jobs, models) of a freshly built and loaded project."""
    package = unique_package()
    root = write_project(tmp_path_factory.mktemp("identity"), package)
    build = build_project(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(root))
        load_build(build, root=root)
        yield (
            importlib.import_module(f"{package}.jobs"),
            importlib.import_module(f"{package}.models"),
        )


def test_values_arrive_as_the_receivers_classes(
    world: Any, app: tuple[ModuleType, ModuleType]
) -> None:
    jobs, models = app
    run, result = run_async(run_to_end(world, jobs.pipeline, 12))
    assert not isinstance(result, BaseException), result
    assert world.runs.get(run.run_id).workflow_name == (
        f"workflow//./{jobs.__name__.replace('.', '/')}//pipeline"
    )
    assert type(result["parcel"]) is models.Parcel
    assert type(result["quote"]) is models.Quote
    assert type(result["money"]) is models.Money
    assert type(result["error"]) is models.Overweight
    assert (result["parcel"].weight, result["quote"].cents, result["money"].cents) == (13, 113, 13)
    assert result["step_sees"] == [True, True, True]  # Parcel, Quote, Money in a step
    assert result["workflow_sees"] == [True, True, True, True]  # and Overweight in the workflow


def test_a_failed_runs_cause_is_the_clients_exception_class(
    world: Any, app: tuple[ModuleType, ModuleType]
) -> None:
    jobs, models = app
    _run, outcome = run_async(run_to_end(world, jobs.too_heavy, 500))
    assert isinstance(outcome, WorkflowRunFailedError)
    assert type(outcome.cause) is models.Overweight
    assert (outcome.cause.label, outcome.cause.weight) == ("huge", 500)
    assert outcome.error["type"] == f"{models.__name__}.Overweight"


def test_a_step_function_of_the_users_module_is_passed_by_its_id(
    world: Any, app: tuple[ModuleType, ModuleType]
) -> None:
    jobs, models = app
    run, result = run_async(run_to_end(world, jobs.apply, models.weigh, models.Parcel("a", 3)))
    assert result == 3
    created = world.events.list(run.run_id)[2]
    assert created.event_type == "step_created"
    (step_arg, _parcel) = created.data["input"]["args"]
    assert step_arg["$t"] == "step"
    assert step_arg["v"] == f"step//./{models.__name__.replace('.', '/')}//weigh"
