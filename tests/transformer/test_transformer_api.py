"""The transformer package's public surface."""

from __future__ import annotations

import subprocess
import sys

import wfkit.transformer
from wfkit.transformer import make_id, module_name_for, transform_module


def test_all_is_pinned() -> None:
    assert sorted(wfkit.transformer.__all__) == [
        "Diagnostic",
        "GeneratedModule",
        "MODES",
        "TransformResult",
        "build_manifest",
        "dump_manifest",
        "make_id",
        "module_name_for",
        "transform_module",
    ]


def test_every_name_in_all_resolves() -> None:
    for name in wfkit.transformer.__all__:
        assert getattr(wfkit.transformer, name) is not None


def test_the_directive_rules_load_without_libcst() -> None:
    """wfbuild's file discovery asks the transformer's spelling check before anything is
    parsed; a build with nothing to transform must not pay for libcst."""
    code = (
        "import sys\n"
        "from wfkit.transformer.directives import is_directive_like\n"
        "assert is_directive_like('use stepp')\n"
        "assert 'libcst' not in sys.modules, sorted(m for m in sys.modules if 'cst' in m)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_module_name_for() -> None:
    assert module_name_for("pkg/mod.py") == "pkg.mod"
    assert module_name_for("pkg/__init__.py") == "pkg"
    assert module_name_for("pkg\\sub\\mod.py") == "pkg.sub.mod"
    assert module_name_for("top.py") == "top"


def test_make_id() -> None:
    assert make_id("workflow", "pkg/mod.py", "checkout") == "workflow//./pkg/mod//checkout"
    assert make_id("step", "pkg\\mod.py", "outer/inner") == "step//./pkg/mod//outer/inner"
    assert make_id("class", "./pkg/mod.py", "Point") == "class//./pkg/mod//Point"


def test_plain_step_and_workflow() -> None:
    source = (
        "async def charge(x):\n"
        '    "use step"\n'
        "    return x\n"
        "\n"
        "async def checkout(x):\n"
        '    "use workflow"\n'
        "    return await charge(x)\n"
    )
    result = transform_module(source, path="app/flow.py", module="app.flow")
    assert result.ok and result.has_directives
    assert result.steps == {"charge": "step//./app/flow//charge"}
    assert result.workflows == {"checkout": "workflow//./app/flow//checkout"}
    assert result.workflow is not None and result.step is not None and result.client is not None
    assert 'charge = __wfkit__.step_proxy("step//./app/flow//charge", "charge")' in (
        result.workflow.code
    )
    assert '__wfkit__.register_step("step//./app/flow//charge", charge)' in result.step.code
    assert '__wfkit__.tag_workflow("workflow//./app/flow//checkout", checkout)' in (
        result.client.code
    )
