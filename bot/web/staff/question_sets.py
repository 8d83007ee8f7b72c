"""The town's question sets, in the commune's database (``bot.state``), in the runner's format (``eval.dataset``).

A set is checked whole before it is saved: a bad file is refused with one French message per bad line, and the
set already saved is left as it was. CSV is accepted on upload and stored as JSON Lines. Every worker and machine
reads the same sets.

Deployments from before the database kept them as files (``<staff dir>/sets/<name>.jsonl``); ``import_files``
(``guichet staff migrate``) reads them once.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.errors import GuichetError
from bot.state.database import Database
from bot.state.tables import question_sets
from bot.timestamps import now_iso
from eval.dataset import Case, read_cases, save_cases

SET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
FORMATS = ("jsonl", "csv")
FOLDER = "sets"  # where a deployment from before the database kept them, in its staff folder


class SetError(GuichetError):
    """A question set cannot be saved or read; ``lines`` holds one French message per bad line."""

    def __init__(self, message: str, lines: list[str] | None = None):
        super().__init__(message)
        self.lines = lines or []


def legacy_files(staff_dir: Path) -> list[Path]:
    """Set files of a file-based deployment still waiting for ``guichet staff migrate``."""
    return sorted(p for p in (staff_dir / FOLDER).glob("*.jsonl") if SET_NAME.match(p.stem))


class QuestionSets:
    """The sets in the database at ``database_url``."""

    def __init__(self, database_url: str):
        self.db = Database.open(database_url)

    @staticmethod
    def check_name(name: str) -> str:
        if not SET_NAME.match(name):
            raise SetError("Nom de jeu invalide : 1 à 48 caractères, minuscules, chiffres, tiret ou souligné.")
        return name

    def exists(self, name: str) -> bool:
        with self.db.transaction() as db:
            return _content(db, self.check_name(name)) is not None

    def names(self) -> list[dict[str, Any]]:
        """Each saved set: name, number of cases, last change."""
        query = select(question_sets.c.name, question_sets.c.cases, question_sets.c.changed)
        with self.db.transaction() as db:
            return [dict(row) for row in db.execute(query.order_by(question_sets.c.name)).mappings()]

    def read(self, name: str) -> list[Case]:
        with self.db.transaction() as db:
            content = _content(db, self.check_name(name))
        if content is None:
            raise SetError(f"Aucun jeu de questions « {name} ».")
        cases, errors = parsed(content)
        if errors:
            raise SetError(f"Le jeu « {name} » a des lignes invalides.", errors)
        return cases

    def text(self, name: str) -> str:
        with self.db.transaction() as db:
            return _content(db, self.check_name(name)) or ""

    def save(self, name: str, content: str, fmt: str = "jsonl") -> list[Case]:
        """Check ``content`` (JSON Lines or CSV) and store it as set ``name``; a bad file changes nothing."""
        self.check_name(name)
        if fmt not in FORMATS:
            raise SetError(f"Format inconnu « {fmt} » : JSONL ou CSV.")
        cases, errors = parsed(content, fmt)
        if errors:
            raise SetError("Le fichier n'a pas été enregistré : corrigez ces lignes.", errors)
        if not cases:
            raise SetError("Le fichier ne contient aucune question.")
        _twice_if_created_meanwhile(lambda: self._save(name, as_jsonl(cases), len(cases)))
        return cases

    def _save(self, name: str, content: str, cases: int) -> None:
        with self.db.transaction() as db:
            _put(db, name, content, cases)

    def append(self, name: str, case: Case) -> None:
        """Add one case at the end of a set (created if new); its id must be new in the set."""
        _twice_if_created_meanwhile(lambda: self._append(name, case))

    def _append(self, name: str, case: Case) -> None:
        with self.db.transaction() as db:  # read and written in one transaction: two agents adding wait in turn
            content = _content(db, self.check_name(name), for_update=True) or ""
            existing = parsed(content)[0]
            if any(c.id == case.id for c in existing):
                raise SetError(f"Le jeu « {name} » a déjà un cas « {case.id} ».")
            if content and not content.endswith("\n"):
                content += "\n"
            _put(db, name, content + as_jsonl([case]), len(existing) + 1)

    def import_files(self, staff_dir: Path) -> int:
        """Copy the set files of ``staff_dir`` (written by Guichet before the database) in, as they are: how many
        were new. A set of the same name and another content already in the database stops the import before
        anything is written. The files are left to the caller (``bot.web.staff.migration``)."""
        found = {path: path.read_text(encoding="utf-8") for path in legacy_files(staff_dir)}
        with self.db.transaction() as db:
            stored = {path: _content(db, path.stem) for path in found}
            for path, content in found.items():
                if stored[path] not in (None, content):
                    raise SetError(
                        f"Un autre jeu « {path.stem} » est déjà dans la base : renommez ou retirez {path}, puis "
                        "recommencez (rien n'a été importé)."
                    )
            new = [path for path in found if stored[path] is None]
            for path in new:
                changed = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
                content = found[path]
                row = {"name": path.stem, "content": content, "cases": len(parsed(content)[0]), "changed": changed}
                db.execute(insert(question_sets).values(row))
        return len(new)


def parsed(content: str, fmt: str = "jsonl") -> tuple[list[Case], list[str]]:
    """The valid cases of a set's text, and one French message per bad line (« ligne 4 : … »)."""
    with tempfile.TemporaryDirectory() as scratch:  # the dataset reader reads files
        sent = Path(scratch) / f"envoi.{fmt}"
        sent.write_text(content, encoding="utf-8")
        cases, errors = read_cases(sent)
        return cases, [_for_staff(e, sent) for e in errors]


def as_jsonl(cases: list[Case]) -> str:
    """Cases as the runner's JSON Lines."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "jeu.jsonl"
        save_cases(cases, path)
        return path.read_text(encoding="utf-8")


def _content(db: Connection, name: str, for_update: bool = False) -> str | None:
    query = select(question_sets.c.content).where(question_sets.c.name == name)
    return db.execute(query.with_for_update() if for_update else query).scalar()


def _twice_if_created_meanwhile(write: Callable[[], None]) -> None:
    """Run ``write`` again when another agent created the same new set between its read and its insert (the row
    lock of PostgreSQL holds nothing while the row does not exist yet): the second time, the set exists."""
    try:
        write()
    except IntegrityError:
        write()


def _put(db: Connection, name: str, content: str, cases: int) -> None:
    """Write set ``name``, new or not."""
    values = {"content": content, "cases": cases, "changed": now_iso()}
    if not db.execute(update(question_sets).where(question_sets.c.name == name).values(values)).rowcount:
        db.execute(insert(question_sets).values(name=name, **values))


def _for_staff(message: str, path: Path) -> str:
    """A dataset message with the file's path turned into « ligne N » (staff never see the server's paths)."""
    message = re.sub(rf"^{re.escape(str(path))}:(\d+): ", r"ligne \1 : ", message)
    return message.replace(f"{path}: ", "")
