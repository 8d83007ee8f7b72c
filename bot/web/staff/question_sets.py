"""The town's question sets, kept in the data volume (``<staff dir>/sets/<name>.jsonl``), in the runner's format.

A set is checked whole before it is saved: a bad file is refused with one French message per bad line, and the
set already saved is left as it was. CSV is accepted on upload and stored as JSON Lines.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bot.errors import GuichetError
from eval.dataset import Case, read_cases, save_cases

SET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
FORMATS = ("jsonl", "csv")


class SetError(GuichetError):
    """A question set cannot be saved or read; ``lines`` holds one French message per bad line."""

    def __init__(self, message: str, lines: list[str] | None = None):
        super().__init__(message)
        self.lines = lines or []


class QuestionSets:
    def __init__(self, staff_dir: Path):
        self.directory = staff_dir / "sets"

    def path(self, name: str) -> Path:
        if not SET_NAME.match(name):
            raise SetError("Nom de jeu invalide : 1 à 48 caractères, minuscules, chiffres, tiret ou souligné.")
        return self.directory / f"{name}.jsonl"

    def names(self) -> list[dict]:
        """Each saved set: name, number of cases, last change."""
        rows = []
        for path in sorted(self.directory.glob("*.jsonl")):
            cases, _ = read_cases(path)
            changed = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
            rows.append({"name": path.stem, "cases": len(cases), "changed": changed})
        return rows

    def read(self, name: str) -> list[Case]:
        path = self.path(name)
        if not path.exists():
            raise SetError(f"Aucun jeu de questions « {name} ».")
        cases, errors = read_cases(path)
        if errors:
            raise SetError(f"Le jeu « {name} » a des lignes invalides.", [_for_staff(e, path) for e in errors])
        return cases

    def text(self, name: str) -> str:
        path = self.path(name)
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def save(self, name: str, content: str, fmt: str = "jsonl") -> list[Case]:
        """Check ``content`` (JSON Lines or CSV) and store it as set ``name``; a bad file changes nothing."""
        target = self.path(name)
        if fmt not in FORMATS:
            raise SetError(f"Format inconnu « {fmt} » : JSONL ou CSV.")
        with tempfile.TemporaryDirectory() as scratch:
            sent = Path(scratch) / f"envoi.{fmt}"
            sent.write_text(content, encoding="utf-8")
            cases, errors = read_cases(sent)
            if errors:
                lines = [_for_staff(e, sent) for e in errors]
                raise SetError("Le fichier n'a pas été enregistré : corrigez ces lignes.", lines)
            if not cases:
                raise SetError("Le fichier ne contient aucune question.")
            self.directory.mkdir(parents=True, exist_ok=True)
            partial = self.directory / f".{name}.tmp.jsonl"
            save_cases(cases, partial)
            os.replace(partial, target)
        return cases

    def append(self, name: str, case: Case) -> None:
        """Add one case at the end of a set (created if new); its id must be new in the set."""
        target = self.path(name)
        existing = read_cases(target)[0] if target.exists() else []
        if any(c.id == case.id for c in existing):
            raise SetError(f"Le jeu « {name} » a déjà un cas « {case.id} ».")
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            line = Path(scratch) / "cas.jsonl"
            save_cases([case], line)
            with open(target, "a", encoding="utf-8") as out:
                out.write(line.read_text(encoding="utf-8"))


def _for_staff(message: str, path: Path) -> str:
    """A dataset message with the file's path turned into « ligne N » (staff never see the server's paths)."""
    message = re.sub(rf"^{re.escape(str(path))}:(\d+): ", r"ligne \1 : ", message)
    return message.replace(f"{path}: ", "")
