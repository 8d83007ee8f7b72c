"""What residents ask that the documents don't answer, kept for staff without personal data.

A record holds the day, the channel, the outcome, the question as the answer path saw it (personal data already
masked by the input guard, a follow-up already written out) and the documents retrieval found closest. Only turns
that ended without a source or with the official sentence alone are kept (a complaint's question is kept by the
feedback). No session id, no time of day. Monthly files (``lacunes-2026-11.jsonl``), with the feedback's retention.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bot.answer.outcomes import Outcome
from bot.answer.turn import Turn
from bot.web.monthly_records import MonthlyRecords

GAP_OUTCOMES = (Outcome.UNANSWERABLE_NO_SOURCES, Outcome.ANSWERED_FROM_QUOTE)
CLOSEST_DOCUMENTS = 3


class GapStore(MonthlyRecords):
    """Appends the questions the documents did not answer to ``folder``; ``retention_days`` bounds their life."""

    def __init__(self, folder: Path, retention_days: int, today=dt.date.today):
        super().__init__(folder, "lacunes", retention_days, today)

    def add(self, channel: str, turn: Turn) -> dict | None:
        """Keep the turn's question if the documents did not answer it; returns the record, or None."""
        if turn.outcome not in GAP_OUTCOMES or not turn.question.strip():
            return None
        documents: dict[str, str] = {}
        for passage in turn.passages:
            documents.setdefault(passage.source, passage.title)
        closest = [{"source": s, "title": t} for s, t in list(documents.items())[:CLOSEST_DOCUMENTS]]
        return self.append(
            {"channel": channel, "outcome": str(turn.outcome), "question": turn.question, "documents": closest}
        )
