"""The lazy NameResolver (qualified names, closures) gives what libcst's providers give."""

from __future__ import annotations

import pytest

from wfkit.transformer import discovery, transform_module

CLOSURES = [
    """import os.path
import time


async def w2(a):
    "use workflow"
    os = a
    q = [v for v in range(3)]
    f = 3

    async def s2(c):
        "use step"
        t = os.path.join(c)
        g = lambda z=q: z + f
        del c
        return [a for a in q if a], {k: v for k, v in zip(q, q)}, time.time(), g()

    return await s2(1)


async def w3(a):
    "use workflow"
    x = 1

    async def s3():
        "use step"
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

    return await s3()


class Box:
    @staticmethod
    async def w4(n):
        "use workflow"
        total = n

        async def s4():
            "use step"
            return total + n

        return await s4()
""",
    """async def w(a):
    "use workflow"
    import json
    import os.path
    def helper():
        return 1
    class K:
        pass

    async def s():
        "use step"
        return json.dumps(a), helper(), K, os.path.join("a")

    return await s()
""",
    """async def w(a):
    "use workflow"
    v = 1

    async def s():
        "use step"
        print(v)
        v = 2
        return v

    async def t(v):
        "use step"
        return v

    return await s()
""",
    """async def w(a: int) -> str:
    "use workflow"
    Order = int

    async def s() -> "Order":
        "use step"
        x: "Order" = 1
        return x

    return await s()
""",
]


def _results(source: str) -> tuple[object, ...]:
    result = transform_module(source, path="app/flows.py", module="app.flows")
    codes = [(m.code, m.line_map) if m else None for m in (result.workflow, result.step)]
    return (*codes, result.steps, [d.render() for d in result.diagnostics])


@pytest.mark.parametrize("source", CLOSURES)
def test_fast_paths_match_libcst(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _results(source)
    monkeypatch.setattr(discovery, "supported", lambda *args: False)  # libcst throughout
    assert _results(source) == fast
