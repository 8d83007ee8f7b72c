"""Timestamps as Guichet stores them: UTC, ISO 8601, to the second (shown to staff in the town's time)."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
