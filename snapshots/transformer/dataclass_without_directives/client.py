from dataclasses import dataclass


@dataclass
class Untouched:
    """Dataclasses are registered only in modules with directives."""

    value: int
