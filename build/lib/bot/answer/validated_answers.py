"""Answers staff have validated, served again in milliseconds while the corpus is unchanged.

Staff run an evaluation, read the report, and mark the answers they approve (``guichet eval validate RUN``).
Each entry is keyed on the normalised question and the corpus hash of the index it was produced on: when
re-ingestion changes the corpus, the hash changes and the entry is no longer served (it stays in the file, so a
later run can validate it again). Only answered outcomes are stored; refusals cost nothing to recompute.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bot.answer.turn import Citation
from bot.errors import ConfigError
from bot.text import question_key


def _entry(line: str, path: Path, number: int) -> dict[str, Any]:
    """One validated answer; a damaged line stops the start with its file and line number, never silently."""
    try:
        entry: dict[str, Any] = json.loads(line)
        [Citation(**c) for c in entry["citations"]]
        if isinstance(entry["key"], str) and isinstance(entry["corpus_hash"], str) and isinstance(entry["answer"], str):
            return entry
        problem = "a field has the wrong type"
    except json.JSONDecodeError as exc:
        problem = exc.msg
    except (KeyError, TypeError) as exc:
        problem = f"missing or bad field {exc}"
    raise ConfigError(
        f"Validated answers file {path}, line {number}: {problem} — correct or delete that line "
        "(the other answers are kept), then start again."
    )


class ValidatedAnswers:
    """A JSON Lines file of validated answers, loaded in memory; appended to by staff."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], dict[str, Any]] = {}
        if self.path.exists():
            for number, line in enumerate(self.path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                if line.strip():
                    entry = _entry(line, self.path, number)
                    self._entries[(entry["key"], entry["corpus_hash"])] = entry

    def lookup(self, question: str, corpus_hash: str) -> tuple[str, list[Citation]] | None:
        entry = self._entries.get((question_key(question), corpus_hash))
        if entry is None:
            return None
        return entry["answer"], [Citation(**c) for c in entry["citations"]]

    def add(
        self, question: str, corpus_hash: str, answer: str, citations: list[dict[str, Any]], validated_by: str
    ) -> bool:
        """Store one validated answer; False if the same question is already validated on this corpus."""
        key = question_key(question)
        if not key or (key, corpus_hash) in self._entries:
            return False
        cited = [asdict(Citation(**{k: c[k] for k in ("title", "source", "url", "date", "quote")})) for c in citations]
        entry = {
            "key": key,
            "question": question,
            "corpus_hash": corpus_hash,
            "answer": answer,
            "citations": cited,
            "validated_by": validated_by,
        }
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._entries[(key, corpus_hash)] = entry
        return True

    def __len__(self) -> int:
        return len(self._entries)
