"""What every ``wfkit`` subcommand shares: its help formatting, the world it acts on and
its JSON arguments."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from typing import Any, TypeAlias

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default, unless its text already says it or there is
    none to show (a flag that is off, an option that is unset by default)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        takes_default = action.option_strings or action.nargs in ("?", "*")
        if (
            not takes_default
            or action.default is None
            or action.default is False
            or action.default == argparse.SUPPRESS
            or "default" in text
        ):
            return text
        return f"{text} (default: %(default)s)"


def add_command(sub: Subcommands, name: str, help: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A ``wfkit NAME`` subcommand parser whose help shows defaults; its description is
    ``help`` unless given."""
    kwargs.setdefault("description", help[:1].upper() + help[1:] + ".")
    return sub.add_parser(name, help=help, formatter_class=HelpFormatter, **kwargs)


EXTRAS = {
    "starlette": "web",
    "uvicorn": "web",
    "httpx": "web",
    "anyio": "web",
    "psycopg": "postgres",
    "psycopg_binary": "postgres",
    "opentelemetry": "otel",
    "cryptography": "encryption",
}
"""Top-level modules of optional dependencies, and the extra that installs each."""


def missing_extra(exc: BaseException) -> str | None:
    """What to install when ``exc`` (or an exception it came from) is the import of an
    optional dependency failing; None for any other error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ImportError):
            module = (current.name or "").split(".")[0]
            extra = EXTRAS.get(module)
            if extra is not None:
                return (
                    f"this needs the {extra!r} extra ({module} is not installed): "
                    f"pip install 'wfkit[{extra}]'"
                )
        current = current.__cause__ or current.__context__
    return None


def world_of(args: argparse.Namespace) -> Any:
    """The world named by ``--world`` (default: ``$WFKIT_WORLD`` or the project's local one)."""
    from wfkit.runtime.world_config import get_world

    return get_world(args.world)


def reachable_world_of(args: argparse.Namespace) -> Any:
    """The world of a long-running command (worker, serve, web), waited for while its
    database cannot be reached: one line per try instead of a traceback."""
    from wfkit.runtime.world_config import open_world_retrying

    log = logging.getLogger(f"wfkit.{args.command}")
    # A configured log names its logger on each line; Python's last-resort handler
    # (serve and web configure none) prints the bare message.
    prefix = "" if logging.getLogger().handlers else f"wfkit {args.command}: "
    return open_world_retrying(args.world, log=log, prefix=prefix)


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
