"""Timestamps as Guichet stores them: UTC, ISO 8601, to the second (shown to staff in the town's time); and a
document's age, from the date ingestion gave it (a fiche's modification date, a page's, a tariff's year)."""

from __future__ import annotations

from datetime import UTC, date, datetime


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
