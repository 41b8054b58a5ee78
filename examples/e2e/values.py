"""Scenarios 21, 22, 24, 25: steps as values, closures, custom classes, methods."""

from dataclasses import dataclass

from pydantic import BaseModel


async def double(x: int) -> int:
    "use step"
    return x * 2


async def apply_twice(fn, x: int) -> int:
    "use step"
    return await fn(await fn(x))


async def step_passing(x: int = 5) -> int:
    "use workflow"
    return await apply_twice(double, x)


async def closures(base: int = 10) -> dict:
    "use workflow"
    prefix = "total"
    multiplier = 3

    async def combine(x: int) -> str:
        "use step"
        return f"{prefix}={(base + x) * multiplier}"

    return {"first": await combine(1), "second": await combine(2)}


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y

    def __wfkit_serialize__(self) -> dict:
        return {"x": self.x, "y": self.y}

    @classmethod
    def __wfkit_deserialize__(cls, data: dict) -> "Point":
        return cls(data["x"], data["y"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    async def scaled(self, factor: int) -> "Point":
        "use step"
        return Point(self.x * factor, self.y * factor)


@dataclass
class Box:
    label: str
    point: Point


class Order(BaseModel):
    order_id: str
    cents: int


async def move(point: Point, box: Box, order: Order) -> dict:
    "use step"
    return {
        "point": Point(point.x + 1, point.y + 1),
        "box": Box(box.label.upper(), box.point),
        "order": Order(order_id=order.order_id, cents=order.cents * 2),
        "types": [type(point).__name__, type(box).__name__, type(order).__name__],
    }


async def custom_classes() -> dict:
    "use workflow"
    moved = await move(Point(1, 2), Box("crate", Point(0, 0)), Order(order_id="o-1", cents=5))
    return {
        **moved,
        "workflow_types": [
            type(moved["point"]).__name__,
            type(moved["box"]).__name__,
            type(moved["order"]).__name__,
        ],
    }


async def instance_method() -> dict:
    "use workflow"
    bigger = await Point(2, 3).scaled(10)
    return {"x": bigger.x, "y": bigger.y, "type": type(bigger).__name__}


class Calculator:
    @staticmethod
    async def add(a: int, b: int) -> int:
        "use step"
        return a + b

    @classmethod
    async def times(cls, a: int, b: int) -> int:
        "use step"
        return a * b

    @staticmethod
    async def calculate(a: int, b: int) -> dict:
        "use workflow"
        total = await Calculator.add(a, b)
        product = await Calculator.times(a, b)
        return {"sum": total, "product": product}


@dataclass
class Inventory:
    """Standard-library types inside a dataclass (issue 12's serialization types)."""

    where: object
    counts: object
    recent: object


async def describe_standard_values(values: dict, inventory: Inventory) -> dict:
    "use step"
    return {
        "types": sorted({type(v).__name__ for v in values.values()}),
        "values": values,
        "inventory": inventory,
        "recent_maxlen": inventory.recent.maxlen,
    }


async def standard_values(values: dict, inventory: Inventory) -> dict:
    "use workflow"
    described = await describe_standard_values(values, inventory)
    return {"workflow_saw": sorted({type(v).__name__ for v in values.values()}), **described}
