"""What every ``wfkit`` subcommand shares: the world it acts on and its JSON arguments."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any, TypeAlias

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def world_of(args: argparse.Namespace) -> Any:
    """The world named by ``--world`` (default: ``$WFKIT_WORLD`` or the project's local one)."""
    from wfkit.runtime.world_config import get_world

    return get_world(args.world)


def json_args(values: Sequence[str]) -> list[Any]:
    """Parse each command-line argument as JSON.

    Raises:
        SystemExit: an argument is not JSON (one line saying how to quote a string).
    """
    parsed = []
    for value in values:
        try:
            parsed.append(json.loads(value))
        except json.JSONDecodeError as exc:
            raise SystemExit(
                f"wfkit: argument {value!r} is not JSON ({exc.msg}); quote strings: '\"text\"'"
            ) from None
    return parsed
