"""Residents' feedback on answers, stored without personal data.

A record holds the day, the turn's outcome, the cited sources, the prompt version, useful or not and a reason
from a fixed list. When the reason is "wrong" or "incomplete", the question is kept too, as the answer path saw
it (personal data already masked), so staff can turn the complaint into a test case. No session id, no address,
no time of day: nothing that points back to a person.
Files are monthly JSON Lines (``feedback-2026-11.jsonl``); months older than the retention period are deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Literal

Reason = Literal["no_visit_needed", "clear", "not_clear", "wrong", "incomplete", "not_answered", "other"]
REASONS_FR = {
    "no_visit_needed": "J'ai ma réponse, sans appeler ni me déplacer",
    "clear": "Réponse claire",
    "not_clear": "Pas claire",
    "wrong": "Fausse ou dépassée",
    "incomplete": "Incomplète",
    "not_answered": "Ne répond pas à ma question",
    "other": "Autre raison",
}

KEEPS_QUESTION = ("wrong", "incomplete")  # a complaint staff can turn into a test case


class MonthlyRecords:
    """Records appended to monthly JSON Lines files (``<prefix>-2026-11.jsonl``) in ``folder``; the months older
    than ``retention_days`` are deleted by ``purge``. Each record carries its ``day``, never a time of day."""

    def __init__(self, folder: Path, prefix: str, retention_days: int, today=dt.date.today):
        self.folder, self.prefix, self.retention_days, self.today = Path(folder), prefix, retention_days, today
        self._lock = threading.Lock()

    def append(self, record: dict) -> dict:
        """Write ``record`` with today's ``day``; returns it."""
        day = self.today()
        record = {"day": day.isoformat(), **record}
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / f"{self.prefix}-{day:%Y-%m}.jsonl", "a", encoding="utf-8") as out:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return record

    def records(self, since: dt.date) -> list[dict]:
        """The records of ``since`` or later, oldest first (a damaged line is skipped, not fatal)."""
        found = []
        for path in sorted(self.folder.glob(f"{self.prefix}-*.jsonl")):
            if path.stem.removeprefix(f"{self.prefix}-") < f"{since:%Y-%m}":
                continue
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and str(record.get("day", "")) >= since.isoformat():
                    found.append(record)
        return sorted(found, key=lambda r: r["day"])

    def purge(self) -> list[Path]:
        """Delete the monthly files whose whole month is older than the retention period.

        Every worker purges at start-up, possibly at the same moment: a file another one deleted first is fine.
        """
        limit = self.today() - dt.timedelta(days=self.retention_days)
        removed = []
        for path in sorted(self.folder.glob(f"{self.prefix}-*.jsonl")):
            try:
                year, month = map(int, path.stem.removeprefix(f"{self.prefix}-").split("-"))
            except ValueError:
                continue
            month_end = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
            if month_end < limit:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed


class FeedbackStore(MonthlyRecords):
    """Appends feedback records to ``folder``; ``retention_days`` bounds how long they are kept."""

    def __init__(self, folder: Path, retention_days: int, today=dt.date.today):
        super().__init__(folder, "feedback", retention_days, today)

    def add(
        self,
        useful: bool,
        reason: str | None,
        outcome: str | None,
        sources: list[str],
        prompt: str,
        question: str = "",
    ) -> dict:
        """Record one vote; ``question`` (already masked) is kept only for an answer said wrong or incomplete."""
        record = {
            "useful": useful,
            "reason": reason,
            "outcome": outcome,  # None when the session had expired: the vote is still counted
            "sources": sources,
            "prompt_version": prompt,
        }
        if reason in KEEPS_QUESTION and question:
            record["question"] = question
        return self.append(record)
