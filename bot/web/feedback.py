"""Residents' feedback on answers, stored without personal data, in the commune's database (``bot.state``).

A record holds the day, the turn's outcome, the cited sources, the prompt version, useful or not and a reason
from a fixed list. When the reason is "wrong" or "incomplete", the question is kept too, as the answer path saw
it (personal data already masked), so staff can turn the complaint into a test case. No session id, no address,
no time of day: nothing that points back to a person. Records older than the retention period are deleted
(``purge``, at every start), whichever worker or machine wrote them.

Deployments from before the database kept monthly files (``feedback-2026-11.jsonl``) in the feedback folder;
``import_files`` (``guichet staff migrate``) reads them once.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import delete, insert, select

from bot.errors import GuichetError
from bot.state.database import Database
from bot.state.tables import feedback
from bot.web.monthly_records import MonthlyRecords

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
FILE_PREFIX = "feedback"  # the monthly files of a deployment from before the database


def legacy_files(folder: Path) -> list[Path]:
    """Feedback files of a file-based deployment still waiting for ``guichet staff migrate``."""
    return MonthlyRecords(folder, FILE_PREFIX, 0).files()


class FeedbackStore:
    """Residents' votes in the database at ``database_url`` (opened at first use); ``retention_days`` bounds how
    long they are kept.

    >>> store = FeedbackStore("sqlite:///var/staff/guichet.db", 365)  # doctest: +SKIP
    >>> store.add(False, "wrong", "answered", ["marche.md"], "answer-fr-v2", "le marché du dimanche")  # doctest: +SKIP
    """

    def __init__(self, database_url: str, retention_days: int, today=dt.date.today):
        self.database_url, self.retention_days, self.today = database_url, retention_days, today

    @cached_property
    def db(self) -> Database:
        return Database.open(self.database_url)

    def add(
        self,
        useful: bool,
        reason: str | None,
        outcome: str | None,
        sources: list[str],
        prompt: str,
        question: str = "",
    ) -> dict[str, Any]:
        """Record one vote with today's day; ``question`` (already masked) is kept only for an answer said wrong
        or incomplete. Returns the record."""
        record: dict[str, Any] = {
            "day": self.today().isoformat(),
            "useful": useful,
            "reason": reason,
            "outcome": outcome,  # None when the session had expired: the vote is still counted
            "sources": sources,
            "prompt_version": prompt,
        }
        if reason in KEEPS_QUESTION and question:
            record["question"] = question
        with self.db.transaction() as db:
            db.execute(insert(feedback).values(_row(record)))
        return record

    def records(self, since: dt.date) -> list[dict[str, Any]]:
        """The records of ``since`` or later, oldest first."""
        query = select(feedback).where(feedback.c.day >= since.isoformat()).order_by(feedback.c.day, feedback.c.id)
        with self.db.transaction() as db:
            rows = db.execute(query).mappings().all()
        return [_record(row) for row in rows]

    def purge(self) -> int:
        """Delete the records older than the retention period; how many. Every worker purges at start-up."""
        limit = self.today() - dt.timedelta(days=self.retention_days)
        with self.db.transaction() as db:
            return int(db.execute(delete(feedback).where(feedback.c.day < limit.isoformat())).rowcount)

    def import_files(self, folder: Path) -> int:
        """Copy the monthly files of ``folder`` (written by Guichet before the database) in, then apply the
        retention: how many records were read. The files are left to the caller (``bot.web.staff.migration``)."""
        found = []
        for path in MonthlyRecords(folder, FILE_PREFIX, self.retention_days).files():
            found += _read_strictly(path)
        if found:
            with self.db.transaction() as db:
                db.execute(insert(feedback), [_row(record) for record in found])
        self.purge()
        return len(found)


def _row(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the table keeps it (its sources as JSON)."""
    return {
        "day": str(record["day"]),
        "useful": bool(record.get("useful")),
        "reason": record.get("reason"),
        "outcome": record.get("outcome"),
        "sources": json.dumps(list(record.get("sources") or []), ensure_ascii=False),
        "prompt_version": str(record.get("prompt_version", "")),
        "question": record.get("question") or None,
    }


def _record(row: Any) -> dict[str, Any]:
    """A row as the console reads it: the same keys as the vote that made it."""
    record = {k: row[k] for k in ("day", "useful", "reason", "outcome")}
    record |= {"sources": json.loads(row["sources"]), "prompt_version": row["prompt_version"]}
    if row["question"]:
        record["question"] = row["question"]
    return record


def _read_strictly(path: Path) -> list[dict[str, Any]]:
    """Every vote of one monthly file; a line that cannot be read stops the import (its files are deleted after
    it, so nothing may be skipped silently), naming the file and the line to fix."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or not str(record.get("day", "")):
            raise GuichetError(
                f"{path}, ligne {number} : avis illisible. Corrigez ou supprimez cette ligne, puis relancez "
                "« guichet staff migrate » ; rien n'a été importé de ces avis."
            )
        found.append(record)
    return found
