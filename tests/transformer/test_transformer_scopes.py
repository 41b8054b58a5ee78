"""The lazy NameResolver agrees with libcst's QualifiedNameProvider."""

from __future__ import annotations

import ast

import libcst as cst
from libcst.metadata import MetadataWrapper, QualifiedNameProvider, QualifiedNameSource

from wfkit.transformer.cst_index import CSTIndex
from wfkit.transformer.scopes import NameResolver, supported

SOURCE = """
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
    try:
        pass
    except OSError as os:
        os.path.join()
    for dt in ():
        dt.now()
    return (random.choice(), uuid.uuid4(), date.today(), os.path.join(), helpers.go(),
            other.x(), g(time), print(), len(args), input(), {k: dt.now() for k in ()})


dt.now()
os.urandom(1)
os.path.exists()
"""


def test_resolver_matches_libcst() -> None:
    module = cst.parse_module(SOURCE)
    assert supported(ast.parse(SOURCE))
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    module = wrapper.module

    class Names(cst.CSTVisitor):
        METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    names = Names()
    index = CSTIndex()
    module.visit(index)
    resolver = NameResolver(module, index.parents, index.order, index.position, index.end)
    imported = (QualifiedNameSource.IMPORT, QualifiedNameSource.BUILTIN)
    checked = 0
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
            checked += 1
    assert checked > 40


def test_unsupported_constructs() -> None:
    assert not supported(ast.parse("def f():\n    global x\n"))
    assert not supported(ast.parse("def f():\n    x = 1\n    def g():\n        nonlocal x\n"))
    assert not supported(ast.parse("if (y := 1):\n    pass\n"))
    assert not supported(ast.parse("match x:\n    case 1:\n        pass\n"))


def test_supported_text_shortcut() -> None:
    tree = ast.parse("x = 1\n")
    assert supported(tree, "x = 1\n")
    # the text mentions a keyword: the AST decides
    assert supported(ast.parse("matches = 1\n"), "matches = 1\n")
    source = "def f():\n    global x\n"
    assert not supported(ast.parse(source), source)
