import sys
from dataclasses import dataclass

if sys.version_info >= (3, 10):

    @dataclass(slots=True)
    class Point:
        x: int
        y: int

else:

    @dataclass
    class Point:
        x: int
        y: int


async def norm(p: Point) -> int:
    "use step"
    return abs(p.x) + abs(p.y)
