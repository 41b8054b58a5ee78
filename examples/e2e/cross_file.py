"""Scenario 18: a workflow calls a helper in another module that raises."""

from examples.e2e.helpers import check_positive


async def cross_file_error(value: int = -1) -> int:
    "use workflow"
    return check_positive(value)
