"""Standard cron expressions, parsed and stepped in UTC.

Five fields, ``minute hour day-of-month month day-of-week``, or six with a leading
``second`` field (``*/1 * * * * *``: every second; what tests and fine-grained
schedules use). Each field takes ``*``, a number, a range ``a-b``, a step
``*/n`` or ``a-b/n``, and comma lists of those; months and weekdays also take
their English three-letter names, and weekday 7 is Sunday like 0. As in Vixie
cron, when both day fields are restricted a day matches either of them.

Written here rather than depending on ``croniter``: about a hundred lines, no
time zones to get wrong (schedules run in UTC), and nothing to install in every
worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from wfkit.worlds.base import WfkitError

__all__ = ["Cron", "CronError", "parse_cron"]

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_SEARCH_DAYS = 366 * 5


class CronError(WfkitError, ValueError):
    """A cron expression that does not parse (the message says which field)."""


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression: the allowed values of each field."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday … 6 = Saturday."""
    any_day: bool
    any_weekday: bool

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_days and in_weekdays
        return in_days or in_weekdays

    def next_after(self, after: datetime) -> datetime:
        """The first fire time strictly after ``after`` (an aware datetime), in UTC.

        Raises:
            CronError: the expression never fires (e.g. ``0 0 31 2 *``).
        """
        start = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        day = start.replace(hour=0, minute=0, second=0)
        for _ in range(_SEARCH_DAYS):
            if self._day_matches(day):
                found = self._first_time_in(day, start)
                if found is not None:
                    return found
            day += timedelta(days=1)
        raise CronError(f"cron {self.expression!r} never fires")

    def _first_time_in(self, day: datetime, start: datetime) -> datetime | None:
        """The first allowed time on ``day`` at or after ``start``."""
        for hour in sorted(self.hours):
            for minute in sorted(self.minutes):
                for second in sorted(self.seconds):
                    candidate = day.replace(hour=hour, minute=minute, second=second)
                    if candidate >= start:
                        return candidate
        return None


def _names(token: str, names: list[str] | None, offset: int) -> str:
    if names is not None and token.lower() in names:
        return str(names.index(token.lower()) + offset)
    return token


def _field(text: str, name: str, low: int, high: int, names: list[str] | None = None) -> set[int]:
    offset = 1 if name == "month" else 0
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if span == "*":
                first, last = low, high
            elif "-" in span:
                a, b = span.split("-", 1)
                first, last = int(_names(a, names, offset)), int(_names(b, names, offset))
            else:
                first = int(_names(span, names, offset))
                last = high if step_text else first
        except ValueError:
            raise CronError(f"cron {name} field {text!r}: {part!r} is not a number") from None
        if step < 1 or first < low or last > high or first > last:
            raise CronError(f"cron {name} field {text!r}: {part!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return values


def parse_cron(expression: str) -> Cron:
    """Parse a 5-field (or 6-field, seconds first) cron expression.

    Raises:
        CronError: it does not parse; the message names the field.
    """
    fields = expression.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise CronError(
            f"cron {expression!r}: expected 5 fields (minute hour day month weekday) "
            "or 6 (second first)"
        )
    second, minute, hour, day, month, weekday = fields
    weekdays = _field(weekday, "weekday", 0, 7, _DAYS)
    if 7 in weekdays:
        weekdays = (weekdays - {7}) | {0}
    return Cron(
        expression=expression,
        seconds=frozenset(_field(second, "second", 0, 59)),
        minutes=frozenset(_field(minute, "minute", 0, 59)),
        hours=frozenset(_field(hour, "hour", 0, 23)),
        days=frozenset(_field(day, "day", 1, 31)),
        months=frozenset(_field(month, "month", 1, 12, _MONTHS)),
        weekdays=frozenset(weekdays),
        any_day=day == "*",
        any_weekday=weekday == "*",
    )
