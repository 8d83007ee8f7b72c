"""Timestamps as Guichet stores them: UTC, ISO 8601, to the second (shown to staff in the town's time); and a
document's age, from the date ingestion gave it (a fiche's modification date, a page's, a tariff's year)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def age_in_days(day: str, today: date) -> int | None:
    """Days from a document's ISO date (its first ten characters) to ``today``; None when it has no date.

    >>> age_in_days("2014-01-01", date(2014, 1, 31)), age_in_days("", date(2014, 1, 31))
    (30, None)
    """
    try:
        return (today - date.fromisoformat(day[:10])).days
    except ValueError:
        return None


def week_starts(today: date, weeks: int) -> list[date]:
    """The Mondays of the last ``weeks`` weeks, oldest first, this week's last (the console's charts by week).

    >>> week_starts(date(2026, 11, 25), 2)
    [datetime.date(2026, 11, 16), datetime.date(2026, 11, 23)]
    """
    monday = today - timedelta(days=today.weekday())
    return [monday - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
