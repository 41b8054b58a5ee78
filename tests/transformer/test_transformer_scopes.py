"""NameResolver: what a name refers to, by Python's rules.

Closures are checked against CPython's own symbol table (``symtable``): a nested step's
closure is exactly the free variables CPython compiles for it. Qualified names are
checked against hand-written expectations and against libcst's QualifiedNameProvider
where libcst follows Python.
"""

from __future__ import annotations

import re
import symtable

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libcst.metadata import (
    MetadataWrapper,
    PositionProvider,
    QualifiedNameProvider,
    QualifiedNameSource,
)

from wfkit.transformer import transform_module
from wfkit.transformer.cst_index import CSTIndex
from wfkit.transformer.scopes import NameResolver


def _resolver(source: str) -> tuple[cst.Module, CSTIndex, NameResolver]:
    module = cst.parse_module(source)
    index = CSTIndex().build(module)
    return module, index, NameResolver(module, index)


# -- qualified names ---------------------------------------------------------------------

# Each call marked `# -> NAMES` must resolve to those qualified names (`nothing`: none).
EXPECTED = """
import os.path
import random as r
import time
from datetime import datetime


def reads_module_names():
    time.sleep(1)  # -> time.sleep
    os.getcwd()  # -> os.getcwd
    os.path.join()  # -> os.path.join
    r.random()  # -> random.random
    datetime.now()  # -> datetime.datetime.now
    open("f")  # -> builtins.open


def shadowed_head(os):
    os.path.join()  # -> nothing


def shadowed_by_except():
    try:
        pass
    except OSError as os:
        os.path.join()  # -> nothing


def shadowed_by_walrus():
    if (r := 3):
        r.random()  # -> nothing


def walrus_in_comprehension_binds_in_the_function():
    [(datetime := d) for d in ()]
    datetime.now()  # -> nothing


def shadowed_by_match(value):
    match value:
        case {"k": time}:
            time.sleep(1)  # -> nothing
        case [*r]:
            r.random()  # -> nothing
        case {**os}:
            os.getcwd()  # -> nothing


def shadowed_by_del():
    del time
    time.sleep(1)  # -> nothing


def outer():
    time = None

    def nonlocal_name():
        nonlocal time
        time.sleep(1)  # -> nothing

    def global_name():
        global time
        time.sleep(1)  # -> time.sleep

    def enclosing_local():
        time.sleep(1)  # -> nothing


def imports_in_a_function():
    import time

    def middle():
        nonlocal time
        time = time

        def inner():
            nonlocal time
            time.sleep(1)  # -> time.sleep


def imports_under_global():
    global uuid
    import uuid


def reads_a_name_bound_by_a_global_declaration():
    uuid.uuid4()  # -> uuid.uuid4


class Holder:
    r = 1
    r.random()  # -> nothing

    def method(self):
        r.random()  # -> random.random

    items = [r.random() for _ in range(2)]  # -> random.random
    first = [x for x in r.sample()]  # -> nothing
"""


def _marked_calls(source: str) -> list[tuple[int, set[str]]]:
    marked: list[tuple[int, set[str]]] = []
    for number, line in enumerate(source.splitlines(), start=1):
        match = re.search(r"# -> (.+)$", line)
        if match:
            names = set() if match[1] == "nothing" else set(match[1].split(", "))
            marked.append((number, names))
    return marked


def test_qualified_names_follow_python_scoping() -> None:
    module, index, resolver = _resolver(EXPECTED)
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    calls: dict[int, cst.Call] = {}
    for node in index.order:
        if isinstance(node, cst.Call):
            calls.setdefault(positions[node].start.line, node)
    marked = _marked_calls(EXPECTED)
    assert len(marked) == 23
    for line, expected in marked:
        assert resolver.qualified_names(calls[line].func) == expected, (line, expected)


AGREED = """
import os.path
import random as r
import time
from datetime import datetime as dt, date
from . import helpers
from .pkg import thing as other
from time import *


class Base:
    sleep = time.sleep

    @staticmethod
    def s(open=open):
        return open, time.time(), sleep()

    def m(self, x=r.random()):
        return [r.choice(x) for r in x] + [x for x in r.sample(x, 1)]


@dataclasses.dataclass
class D(Base, pydantic.BaseModel):
    pass


def f(random, *args, key=time.monotonic, **kw):
    import uuid
    g = lambda time: time.time()
    with open("x") as (a, b):
        pass
    for dt in ():
        dt.now()
    return (random.choice(), uuid.uuid4(), date.today(), os.path.join(), helpers.go(),
            other.x(), g(time), print(), len(args), input(), {k: dt.now() for k in ()})


dt.now()
os.urandom(1)
os.path.exists()
"""


def test_qualified_names_agree_with_libcst() -> None:
    """Where libcst follows Python (no local shadows an imported dotted name), its
    QualifiedNameProvider gives the same answers."""
    wrapper = MetadataWrapper(cst.parse_module(AGREED), unsafe_skip_copy=True)
    module = wrapper.module
    index = CSTIndex().build(module)
    resolver = NameResolver(module, index)

    class Names(cst.CSTVisitor):
        METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    names = Names()
    imported = (QualifiedNameSource.IMPORT, QualifiedNameSource.BUILTIN)
    queried: list[cst.CSTNode] = []  # what the analysis asks about
    for node in index.order:
        if isinstance(node, cst.Call):
            queried += [node.func, node]
        elif isinstance(node, cst.Decorator):
            queried.append(node.decorator)
        elif isinstance(node, cst.ClassDef):
            queried += [arg.value for arg in node.bases]
    with names.resolve(wrapper):
        for node in queried:
            found = names.get_metadata(QualifiedNameProvider, node, set())
            want = {q.name for q in found if q.source in imported}
            assert resolver.qualified_names(node) == want, module.code_for_node(node)
    assert len(queried) > 40


# -- closures ------------------------------------------------------------------------------


def _closure_and_frees(source: str) -> tuple[set[str], set[str]]:
    """The resolver's closure of step ``s`` nested in ``w``, and CPython's free variables
    of ``s``."""
    module, _, resolver = _resolver(source)
    outer = next(s for s in module.body if isinstance(s, cst.FunctionDef) and s.name.value == "w")
    step = next(
        node
        for node in outer.body.body
        if isinstance(node, cst.FunctionDef) and node.name.value == "s"
    )
    table = symtable.symtable(source, "m.py", "exec")
    (w_table,) = [t for t in table.get_children() if t.get_name() == "w"]
    (s_table,) = [t for t in w_table.get_children() if t.get_name() == "s"]
    return set(resolver.closure(step)), set(s_table.get_frees())


CLOSURES = [
    # a local `os` shadows the imported `os.path`
    """import os.path
import time


def w(a):
    os = a
    q = [v for v in range(3)]
    f = 3

    async def s(c):
        t = os.path.join(c)
        g = lambda z=q: z + f
        del c
        return [a for a in q if a], {k: v for k, v in zip(q, q)}, time.time(), g()

    return s
""",
    # attribute names, keywords, f-strings, tuple targets, except/with targets
    """def w(a):
    x = 1

    async def s():
        y = x.real
        for x2, (p, *r) in []:
            pass
        with open("f") as (h, j):
            pass
        try:
            pass
        except Exception as err:
            pass
        return a.b.c, f"{a}{x!r:>{x}}", (a).z, a[x].y, print(a=x)

    return s
""",
    # read before a later assignment: local all the same
    """def w(a):
    v = 1

    async def s():
        print(v)
        v = 2
        return v

    return s
""",
    # annotations are reads; string annotations are not
    """def w(a: int) -> str:
    Order = int
    Alias = str

    async def s() -> "Order":
        x: "Order" = 1
        y: Alias = "y"
        return x

    return s
""",
    # ... and under `from __future__ import annotations` no annotation is
    """from __future__ import annotations


def w(a):
    Alias = str

    async def s(b: Alias) -> Alias:
        y: Alias = "y"

        def inner(z: Alias) -> Alias:
            return z

        return y

    return s
""",
    # nonlocal and global in a helper nested in the step
    """def w(a):
    count = 0
    total = 0

    async def s():
        def bump():
            nonlocal count
            count = count + 1

        def reset():
            global total
            total = 0

        bump()
        return count

    return s
""",
    # walrus, match captures, class bodies nested in the step
    """def w(a, b, c, d):
    async def s(value):
        if (b := value):
            pass
        [(c := x) for x in a]
        match value:
            case {"k": d, **rest}:
                pass
            case Point(x=inner) as whole:
                pass

        class K:
            a = 1
            n = a

            def method(self):
                return a

        return b, c, d, rest, whole, inner

    return s
""",
    # a nonlocal declared twice on the way: both refer to the workflow's name
    """def w(a):
    b = 1

    async def s():
        nonlocal b
        b = 2

        def g():
            nonlocal b
            return b

        return g()

    return s
""",
    # the step calling itself, and a class scope between the step and its workflow
    """class Box:
    @staticmethod
    def w(n):
        total = n

        async def s():
            return total + n + s.__name__

        return s
""",
]


def _closure_of_source(source: str) -> tuple[set[str], set[str]]:
    if "class Box" not in source:
        return _closure_and_frees(source)
    module, _, resolver = _resolver(source)
    box = module.body[0]
    assert isinstance(box, cst.ClassDef) and isinstance(box.body, cst.IndentedBlock)
    outer = box.body.body[0]
    assert isinstance(outer, cst.FunctionDef) and isinstance(outer.body, cst.IndentedBlock)
    step = next(n for n in outer.body.body if isinstance(n, cst.FunctionDef))
    table = symtable.symtable(source, "m.py", "exec")
    (w_table,) = table.get_children()[0].get_children()
    (s_table,) = w_table.get_children()
    return set(resolver.closure(step)), set(s_table.get_frees())


EXPECTED_CLOSURES = [
    {"f", "os", "q"},
    {"a", "x"},
    set(),
    {"Alias"},
    set(),
    {"count"},
    {"a"},
    {"b"},
    {"n", "s", "total"},
]


@pytest.mark.parametrize(
    ("source", "expected"), list(zip(CLOSURES, EXPECTED_CLOSURES, strict=True))
)
def test_closure_is_what_cpython_compiles(source: str, expected: set[str]) -> None:
    closure, frees = _closure_of_source(source)
    assert closure == frees == expected


NAMES = ["a", "b", "os", "helper", "K", "v"]


@st.composite
def step_statement(draw: st.DrawFn) -> str:
    n1, n2, n3 = (draw(st.sampled_from(NAMES)) for _ in range(3))
    templates = [
        f"print({n1})",
        f"{n1} = 1",
        f"{n1} += 1",
        f"del {n1}",
        f"for {n1} in {n2}: pass",
        f"[{n1} for {n2} in {n3}]",
        f"[{n1} for {n1} in {n2}]",
        f"lambda {n1}={n2}: {n3}",
        f"def g():\n        nonlocal {n1}\n        {n1} = {n2}",
        f"def g():\n        nonlocal {n1}\n        {n1} = 1\n        def h():\n"
        f"            nonlocal {n1}\n            return {n1}",
        f"nonlocal {n1}",
        f"def g():\n        global {n1}\n        return {n1}",
        f"class C:\n        {n1} = {n2}\n        def m(self): return {n1}",
        f"if ({n1} := 1): pass",
        f"[({n1} := x) for x in {n2}]",
        f"match {n1}:\n        case {{'k': {n2}}}: pass\n        case {n3}(x=q): pass",
        f"x: {n1} = 1",
        f"y: '{n1}' = 1",
        f"try: pass\n    except {n2} as {n1}: pass",
        f"with {n2} as {n1}: pass",
        f"import {n1}",
        f"{n1}.attr.other",
        f"f(kw={n1})",
        f"{n1}.{n2} = {n3}",
    ]
    return draw(st.sampled_from(templates))


@st.composite
def nested_step_module(draw: st.DrawFn) -> str:
    future = draw(st.booleans())
    module_level = draw(st.lists(st.sampled_from(["import os.path", "v = 0", "b = 1"])))
    outer = draw(
        st.lists(
            st.sampled_from(["b = 1", "import os", "def helper(): pass", "class K: pass", "v = 2"])
        )
    )
    body = draw(st.lists(step_statement(), min_size=1, max_size=6))
    lines = ["from __future__ import annotations"] if future else []
    lines += module_level
    lines += ["def w(a):", *(f"    {s}" for s in outer), "    async def s(p):"]
    lines += [f"        {s.replace(chr(10) + '    ', chr(10) + '        ')}" for s in body]
    lines += ["        return p", "    return s", ""]
    return "\n".join(lines)


@given(nested_step_module())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_closure_matches_cpython_on_generated_steps(source: str) -> None:
    try:
        compile(source, "m.py", "exec")
    except SyntaxError:  # e.g. `nonlocal x` with no x to refer to: not a program
        return
    closure, frees = _closure_and_frees(source)
    assert closure == frees, source


# -- what a user sees ------------------------------------------------------------------------


def _closure_in_workflow_mode(source: str) -> list[str]:
    result = transform_module(source, path="app/flows.py", module="app.flows")
    assert result.workflow is not None, [d.render() for d in result.diagnostics]
    match = re.search(r"closure=lambda: \{(.*)\}\)", result.workflow.code)
    return re.findall(r'"(\w+)":', match[1]) if match else []


def test_a_local_shadowing_an_imported_module_travels_with_the_step() -> None:
    source = """import os.path


async def flow(base):
    "use workflow"
    os = base

    async def join(name):
        "use step"
        return os.path.join(name)

    return await join("x")
"""
    assert _closure_in_workflow_mode(source) == ["os"]


def test_names_the_step_binds_itself_or_only_names_in_strings_do_not_travel() -> None:
    source = """async def flow(a):
    "use workflow"
    v = 1
    Order = dict

    async def step() -> "Order":
        "use step"
        x: "Order" = {}
        print(v)
        v = 2
        return x

    return await step()
"""
    assert _closure_in_workflow_mode(source) == []


def test_a_nonlocal_in_a_helper_inside_the_step_travels() -> None:
    source = """async def flow(a):
    "use workflow"
    count = 0

    async def step():
        "use step"
        def bump():
            nonlocal count
            count += 1
        bump()
        return count

    return await step()
"""
    assert _closure_in_workflow_mode(source) == ["count"]
