"""Import rewrites in workflow and step modes (relative → absolute, workflow redirects)."""

from __future__ import annotations

import pytest

from wfkit.transformer import transform_module

FLOW = 'async def flow():\n    "use workflow"\n    return 1\n'


def _modes(
    imports: str,
    *,
    path: str = "pkg/sub/mod.py",
    module: str = "pkg.sub.mod",
    workflow_modules: frozenset[str] = frozenset(),
) -> tuple[str, str, str]:
    result = transform_module(
        imports + "\n\n" + FLOW, path=path, module=module, workflow_modules=workflow_modules
    )
    assert result.workflow and result.step and result.client
    first = imports.count("\n") or 1

    def user_lines(code: str) -> str:
        body = code.split("__wfkit__.MODE = ", 1)[1].split("\n", 1)[1].lstrip("\n")
        return "\n".join(body.splitlines()[:first])

    return (
        user_lines(result.workflow.code),
        user_lines(result.step.code),
        user_lines(result.client.code),
    )


@pytest.mark.parametrize(
    ("source", "absolute"),
    [
        ("from . import x", "from pkg.sub import x"),
        ("from .m import x", "from pkg.sub.m import x"),
        ("from .. import x", "from pkg import x"),
        ("from ..a.b import x as y", "from pkg.a.b import x as y"),
        ("from .... import x", "from .... import x"),  # beyond the top: left alone
    ],
)
def test_relative_imports_become_absolute(source: str, absolute: str) -> None:
    workflow, step, client = _modes(source)
    assert workflow == absolute
    assert step == absolute
    assert client == source


def test_package_init_resolves_against_itself() -> None:
    workflow, step, _ = _modes("from .steps import charge", path="pkg/__init__.py", module="pkg")
    assert workflow == step == "from pkg.steps import charge"


@pytest.mark.parametrize(
    ("source", "redirected"),
    [
        ("from pkg.steps import charge", "from __wfkit_workflow__.pkg.steps import charge"),
        ("from pkg import steps", "from __wfkit_workflow__.pkg import steps"),
        ("import pkg.steps as s", "import __wfkit_workflow__.pkg.steps as s"),
        (
            "import pkg.steps",
            "import __wfkit_workflow__.pkg.steps; from __wfkit_workflow__ import pkg",
        ),
        ("import solo", "import __wfkit_workflow__.solo as solo"),
        (
            "import os, pkg.steps",
            "import os, __wfkit_workflow__.pkg.steps; from __wfkit_workflow__ import pkg",
        ),
        ("from .steps import charge", "from __wfkit_workflow__.pkg.sub.steps import charge"),
        ("from pkg.other import thing", "from pkg.other import thing"),
    ],
)
def test_workflow_modules_are_redirected_in_workflow_mode_only(
    source: str, redirected: str
) -> None:
    modules = frozenset({"pkg.steps", "solo", "pkg.sub.steps"})
    workflow, step, client = _modes(source, workflow_modules=modules)
    assert workflow == redirected
    assert "__wfkit_workflow__" not in step
    assert client == source


def test_imports_inside_functions_are_rewritten_too() -> None:
    source = (
        'async def flow():\n    "use workflow"\n    from .steps import charge\n    return charge\n'
    )
    result = transform_module(
        source, path="pkg/mod.py", module="pkg.mod", workflow_modules=frozenset({"pkg.steps"})
    )
    assert result.workflow is not None
    assert "    from __wfkit_workflow__.pkg.steps import charge\n" in result.workflow.code
