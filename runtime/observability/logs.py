"""Worker logs: the fields every wfkit record carries, and the handler ``wfkit worker`` installs.

Records go to loggers under ``wfkit.`` (``wfkit.worker``, ``wfkit.orchestrator``,
``wfkit.executor``). A record about a run names it twice: in the message, for
people reading a terminal, and as ``extra`` fields (``run_id``, ``step_id``,
``workflow``, ...), for formatters and log pipelines that filter on them.
``JsonFormatter`` writes one JSON object per line with those fields at the top level.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

__all__ = ["LOG_FORMATS", "JsonFormatter", "LogFormat", "configure_logging", "log_fields"]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}


def log_fields(
    run_id: str | None,
    step_id: str | None = None,
    **more: str | int | float | bool | None,
) -> dict[str, object]:
    """The ``extra`` of a record about a run (and one of its steps).

    Args:
        run_id: the run (``wrun_…``).
        step_id: the step's correlation id (``step_…``), when the record is about one.
        **more: further fields (``workflow``, ``step_name``, ``attempt``, ``error_type``…);
            None values are left out.

    Returns:
        A dict to pass as ``extra=`` (never a key a ``LogRecord`` already has).
    """
    fields: dict[str, object] = {"run_id": run_id}
    if step_id is not None:
        fields["step_id"] = step_id
    fields.update((key, value) for key, value in more.items() if value is not None)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (ISO 8601, UTC), ``level``,
    ``logger``, ``message``, the record's ``extra`` fields, and ``exception`` (the
    formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON (non-JSON values as their ``str``)."""
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False)


def configure_logging(
    level: int | str = logging.INFO,
    *,
    log_format: LogFormat = "text",
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send wfkit's records at ``level`` and up (and everyone's warnings) to ``stream``.

    What ``wfkit worker`` calls before it starts. The handler goes on the root
    logger, so a library's warnings show too; the ``wfkit`` logger gets ``level``,
    so ``DEBUG`` adds wfkit's detail without every library's.

    Args:
        level: a ``logging`` level or its name (``"debug"``, ``"INFO"``, ...).
        log_format: ``"text"`` (time, level, logger, message) or ``"json"``
            (``JsonFormatter``: one object per line).
        stream: where to write (default ``sys.stderr``).

    Returns:
        The installed handler (to remove it again).

    Raises:
        ValueError: an unknown level name or format.
    """
    numeric = _level_number(level)
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.addHandler(handler)
    # Other libraries stay at WARNING even when wfkit logs at DEBUG (a record's own
    # logger decides; its ancestors' levels do not filter what propagates to them).
    root.setLevel(max(numeric, logging.WARNING))
    logging.getLogger("wfkit").setLevel(numeric)
    return handler


def _level_number(level: int | str) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.strip().upper())
    if not isinstance(number, int):
        raise ValueError(
            f"unknown log level {level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    return number
