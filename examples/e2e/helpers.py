"""A plain module (no directives) whose function raises: scenario 18's traceback target."""


def check_positive(value: int) -> int:
    if value <= 0:
        raise ValueError(f"expected a positive number, got {value}")
    return value
