"""Answers staff have validated, served again in milliseconds while the corpus is unchanged.

Staff run an evaluation, read the report, and mark the answers they approve (``guichet eval validate RUN``).
Each entry is keyed on the normalised question and the corpus hash of the index it was produced on: when
re-ingestion changes the corpus, the hash changes and the entry is no longer served (it stays in the file, so a
later run can validate it again). Only answered outcomes are stored; refusals cost nothing to recompute.

The file is append-only: a revocation is a line of its own (``revoked_by``), so who approved and who revoked
what, and when, stays readable. Several workers share the file; each reloads it when it changed on disk.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bot.answer.turn import Citation
from bot.errors import ConfigError
from bot.language.abbreviations import spelled_out
from bot.text import question_key
from bot.timestamps import now_iso


def answer_key(question: str) -> str:
    """A question as validated answers are keyed: spelled out as the input guard writes it ("cni" is "carte
    nationale d'identité"), then with accents, case and punctuation ignored. The lookup sees the question after the
    input guard and staff approve it as typed: both must give the same key.

    >>> answer_key("cb coute une cni ?") == answer_key("Combien coûte une carte nationale d'identité")
    True
    """
    return question_key(spelled_out(question))


def _entry(line: str, path: Path, number: int) -> dict[str, Any]:
    """One validated answer or revocation; a damaged line stops the start with its file and line, never silently."""
    try:
        entry: dict[str, Any] = json.loads(line)
        if "revoked_by" in entry and isinstance(entry["key"], str) and isinstance(entry["corpus_hash"], str):
            return entry
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
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the file as last read
        self._reload()

    def _reload(self) -> None:
        """Read the file again if it changed on disk (another worker or the command line wrote to it)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._entries, self._seen = {}, None
            return
        if self._seen == (stat.st_mtime_ns, stat.st_size):
            return
        entries: dict[tuple[str, str], dict[str, Any]] = {}
        for number, line in enumerate(self.path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if line.strip():
                entry = _entry(line, self.path, number)
                if "revoked_by" in entry:
                    entries.pop((entry["key"], entry["corpus_hash"]), None)
                else:
                    entries[(entry["key"], entry["corpus_hash"])] = entry
        self._entries, self._seen = entries, (stat.st_mtime_ns, stat.st_size)

    def lookup(self, question: str, corpus_hash: str) -> tuple[str, list[Citation]] | None:
        with self._lock:
            self._reload()
            entry = self._entries.get((answer_key(question), corpus_hash))
        if entry is None:
            return None
        return entry["answer"], [Citation(**c) for c in entry["citations"]]

    def add(
        self, question: str, corpus_hash: str, answer: str, citations: list[dict[str, Any]], validated_by: str
    ) -> bool:
        """Store one validated answer; False if the same question is already validated on this corpus."""
        key = answer_key(question)
        cited = [asdict(Citation(**{k: c[k] for k in ("title", "source", "url", "date", "quote")})) for c in citations]
        entry = {
            "key": key,
            "question": question,
            "corpus_hash": corpus_hash,
            "answer": answer,
            "citations": cited,
            "validated_by": validated_by,
            "validated_at": now_iso(),
        }
        with self._lock:
            self._reload()
            if not key or (key, corpus_hash) in self._entries:
                return False
            self._append(entry)
        return True

    def revoke(self, key: str, corpus_hash: str, revoked_by: str) -> bool:
        """Stop serving one validated answer; False if it is not (or no longer) validated."""
        with self._lock:
            self._reload()
            if (key, corpus_hash) not in self._entries:
                return False
            self._append({"key": key, "corpus_hash": corpus_hash, "revoked_by": revoked_by, "revoked_at": now_iso()})
        return True

    def entries(self) -> list[dict[str, Any]]:
        """The answers validated now, most recent first (for the staff console)."""
        with self._lock:
            self._reload()
            return sorted(self._entries.values(), key=lambda e: e.get("validated_at", ""), reverse=True)

    def _append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._seen = None  # read back on next use, so this worker and the others see the same file
        self._reload()

    def __len__(self) -> int:
        with self._lock:
            self._reload()
            return len(self._entries)
