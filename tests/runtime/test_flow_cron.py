"""The cron parser and the choice of due ticks (pure: no world, an explicit clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wfkit.runtime.flow.cron import CronError, parse_cron
from wfkit.runtime.flow.schedules import MAX_CATCH_UP, due_ticks


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/5 * * * *", "2026-01-01T10:02:30", "2026-01-01T10:05:00"),
        ("*/5 * * * *", "2026-01-01T10:05:00", "2026-01-01T10:10:00"),  # strictly after
        ("0 9 * * mon-fri", "2026-01-02T09:00:00", "2026-01-05T09:00:00"),  # Fri -> Mon
        ("30 4 1,15 * *", "2026-01-15T05:00:00", "2026-02-01T04:30:00"),
        ("0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),  # leap day
        ("0 0 1 jan *", "2026-06-01T00:00:00", "2027-01-01T00:00:00"),
        ("0 12 * * 7", "2026-01-01T00:00:00", "2026-01-04T12:00:00"),  # 7 is Sunday
        # Both day fields restricted: either matches (Vixie cron).
        ("0 0 13 * fri", "2026-02-01T00:00:00", "2026-02-06T00:00:00"),
        ("*/2 * * * * *", "2026-01-01T00:00:00.500", "2026-01-01T00:00:02"),  # seconds
        ("59 23 31 12 *", "2026-12-31T23:59:00", "2027-12-31T23:59:00"),
    ],
)
def test_next_fire_time(expression: str, after: str, expected: str) -> None:
    assert parse_cron(expression).next_after(at(after)) == at(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "minute field '60'"),
        ("* 24 * * *", "hour field"),
        ("* * 0 * *", "day field"),
        ("* * * 13 *", "month field"),
        ("*/0 * * * *", "outside"),
        ("a * * * *", "not a number"),
        ("5-1 * * * *", "outside"),
    ],
)
def test_bad_expressions_are_one_line_errors(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message) as error:
        parse_cron(expression)
    assert "\n" not in str(error.value)
    assert isinstance(error.value, ValueError)


def test_an_expression_that_never_fires_says_so() -> None:
    with pytest.raises(CronError, match="never fires"):
        parse_cron("0 0 31 2 *").next_after(at("2026-01-01T00:00:00"))


def test_skip_fires_only_the_latest_missed_tick() -> None:
    cron = parse_cron("* * * * *")
    ticks = due_ticks(cron, at("2026-01-01T10:00:00"), at("2026-01-01T10:05:30"), "skip")
    assert ticks == [at("2026-01-01T10:05:00")]


def test_catch_up_fires_every_missed_tick_oldest_first() -> None:
    cron = parse_cron("* * * * *")
    ticks = due_ticks(cron, at("2026-01-01T10:00:00"), at("2026-01-01T10:05:30"), "catch_up")
    assert ticks == [at(f"2026-01-01T10:0{i}:00") for i in range(1, 6)]


def test_catch_up_is_bounded_to_the_latest_ticks() -> None:
    cron = parse_cron("* * * * * *")
    start = at("2026-01-01T00:00:00")
    ticks = due_ticks(cron, start, start + timedelta(hours=1), "catch_up")
    assert len(ticks) == MAX_CATCH_UP
    assert ticks[-1] == start + timedelta(hours=1)


def test_nothing_is_due_before_the_next_tick() -> None:
    cron = parse_cron("*/5 * * * *")
    assert due_ticks(cron, at("2026-01-01T10:00:00"), at("2026-01-01T10:04:59"), "skip") == []
