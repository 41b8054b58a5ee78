"""Properties: plain modules round-trip byte-identically; generated code always compiles."""

from __future__ import annotations

import importlib
import keyword
import sys
import types
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snapshot_support import transform_case

from wfkit.transformer import MODES, transform_module

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n) and n not in {"match", "case", "type", "print"}
)
LITERALS = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=12).map(repr),
    st.sampled_from(["None", "True", "False", "[]", "{}", "()"]),
)
COMMENTS = st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=20)


@st.composite
def plain_statement(draw: st.DrawFn, indent: str = "") -> str:
    kind = draw(st.sampled_from(["assign", "def", "async_def", "class", "comment", "import"]))
    name = draw(NAMES)
    if kind == "assign":
        return f"{indent}{name} = {draw(LITERALS)}\n"
    if kind == "comment":
        return f"{indent}# {draw(COMMENTS)}\n"
    if kind == "import":
        return f"{indent}import {draw(st.sampled_from(['os', 'time', 'random', 'json']))}\n"
    body_indent = indent + "    "
    if kind == "class":
        inner = (
            draw(st.lists(plain_statement(body_indent), min_size=1, max_size=2))
            if (len(indent) < 8)
            else [f"{body_indent}pass\n"]
        )
        return f"{indent}class {name.capitalize()}:\n" + "".join(inner) + f"{body_indent}pass\n"
    prefix = "async def" if kind == "async_def" else "def"
    doc = draw(st.sampled_from(["", f'{body_indent}"""A docstring."""\n']))
    value = draw(LITERALS)
    return f"{indent}{prefix} {name}(x, y={value}):\n{doc}{body_indent}return x\n"


@given(st.lists(plain_statement(), min_size=0, max_size=8), st.sampled_from(["", "\n", "\n\n"]))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_module_without_directives_round_trips_byte_identical(
    statements: list[str], gap: str
) -> None:
    source = gap.join(statements)
    result = transform_module(source, path="pkg/plain.py", module="pkg.plain")
    assert result.ok
    assert not result.has_directives
    for mode in MODES:
        generated = result.generated(mode)
        assert generated is not None
        assert generated.code == source
        assert generated.line_map == ()


@st.composite
def directive_function(draw: st.DrawFn, index: int) -> str:
    name = f"fn{index}"
    kind = draw(st.sampled_from(["step", "workflow", "plain", "nested", "method"]))
    directive = draw(st.sampled_from(['"use {}"', "'use {}'", '"""use {}"""']))
    doc = draw(st.sampled_from(["", '    """Docstring."""\n']))
    comment = draw(st.sampled_from(["", "    # a comment\n"]))
    call = draw(st.sampled_from(["", "    t = time.time()\n", "    r = random.randint(1, 6)\n"]))
    if kind == "step":
        return f"async def {name}(a):\n{comment}    {directive.format('step')}\n{doc}    return a\n"
    if kind == "workflow":
        return (
            f"async def {name}(a):\n{comment}    {directive.format('workflow')}\n{doc}{call}"
            "    return a\n"
        )
    if kind == "nested":
        return (
            f"async def {name}(a, b):\n    {directive.format('workflow')}\n{call}"
            f"    async def inner(c):\n        {directive.format('step')}\n"
            "        return a + c\n"
            "    return await inner(b)\n"
        )
    if kind == "method":
        return (
            "@dataclasses.dataclass\n"
            f"class C{index}:\n    v: int\n\n"
            f"    async def get(self):\n        {directive.format('step')}\n        return self.v\n\n"
            f"    @staticmethod\n    async def run(a):\n        {directive.format('workflow')}\n"
            "        return a\n"
        )
    return f"def {name}(a):\n{doc}    return a\n"


@st.composite
def directive_module(draw: st.DrawFn) -> str:
    count = draw(st.integers(1, 6))
    header = "import dataclasses\nimport random\nimport time\n\n\n"
    functions = [draw(directive_function(i)) for i in range(count)]
    return header + "\n\n".join(functions)


class FakeHelpers:
    """Stands in for ``wfkit.runtime.gen``: records what generated code registers."""

    def __init__(self) -> None:
        self.calls: dict[str, set[str]] = {}
        self.MODE = ""

    def _record(self, helper: str, ident: str) -> None:
        self.calls.setdefault(helper, set()).add(ident)

    def __getattr__(self, helper: str) -> Any:
        if helper == "deterministic":
            return lambda name: getattr(
                importlib.import_module(name.rpartition(".")[0]), name.rpartition(".")[2]
            )

        def record(ident: str, *args: Any, **kwargs: Any) -> Any:
            self._record(helper, ident)
            return args[0] if args and helper != "step_proxy" else object()

        return record


def execute(code: str) -> FakeHelpers:
    """Run generated code with a fake helper module; returns what it registered."""
    helpers = FakeHelpers()
    module = types.ModuleType("wfkit_generated_under_test")  # dataclasses look it up
    module.__dict__["__wfkit__"] = helpers
    sys.modules[module.__name__] = module
    try:
        code_object = compile(
            code.replace("import wfkit.runtime.gen as __wfkit__\n", ""), "gen", "exec"
        )
        exec(code_object, module.__dict__)
    finally:
        del sys.modules[module.__name__]
    return helpers


@given(directive_module())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_code_always_compiles(source: str) -> None:
    result = transform_module(source, path="pkg/flows.py", module="pkg.flows")
    assert result.ok, [d.render() for d in result.diagnostics]
    original = source.splitlines()
    for mode in MODES:
        generated = result.generated(mode)
        assert generated is not None
        compile(generated.code, f"{mode}/pkg/flows.py", "exec")
        lines = generated.code.splitlines()
        for gen, orig, count in generated.line_map:
            assert 1 <= orig and orig + count - 1 <= len(original)
            assert 1 <= gen and gen + count - 1 <= len(lines)


@given(directive_module())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_code_registers_exactly_the_manifest(source: str) -> None:
    result = transform_module(source, path="pkg/flows.py", module="pkg.flows")
    assert result.workflow is not None and result.step is not None and result.client is not None
    workflows, steps = set(result.workflows.values()), set(result.steps.values())
    nested = {i for key, i in result.steps.items() if "/" in key}
    classes = set(result.classes.values())

    workflow = execute(result.workflow.code).calls
    assert workflow.get("register_workflow", set()) == workflows
    assert workflow.get("step_proxy", set()) == steps - nested  # nested: made when run
    assert workflow.get("register_class", set()) == classes

    step = execute(result.step.code).calls
    assert step.get("register_step", set()) == steps - nested
    assert step.get("register_step_factory", set()) == nested
    assert step.get("tag_workflow", set()) == workflows

    client = execute(result.client.code).calls
    assert client.get("tag_step", set()) == steps - nested
    assert client.get("tag_workflow", set()) == workflows
    assert client.get("register_class", set()) == classes


def test_classes_in_module_level_if_and_try_register_when_the_module_runs() -> None:
    """Registration sits inside the branch that defines the class, so running each mode
    registers every class of the manifest (and the step method of the one behind the
    version check)."""
    source, result = transform_case("conditional_definitions")
    assert set(result.classes) == {"Point", "Money"}
    for mode in MODES:
        generated = result.generated(mode)
        assert generated is not None
        calls = execute(generated.code).calls
        assert calls["register_class"] == set(result.classes.values()), mode
    assert result.step is not None
    step = execute(result.step.code).calls
    assert result.steps["Point#norm"] in step["register_step"]
    assert "if sys.version_info" in source
