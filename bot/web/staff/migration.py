"""The one-time move of a file-based deployment's state into its database (``guichet staff migrate``).

Before the database, a commune's staff folder held ``accounts.json`` and ``audit.jsonl``, its question sets
(``sets/<name>.jsonl``) and its runs (``runs/<id>/``), and its feedback folder the residents' monthly feedback
(``feedback-2026-11.jsonl``). ``waiting`` names what is still there, without opening the database (``guichet serve``
refuses to start while anything is); ``migrate`` imports it into the database the commune's staff state uses. The
account files, and the ``sets`` and ``runs`` folders, are then renamed ``*.migrated``, kept for the record; the
feedback files are deleted, since a copy kept beside the database would outlive the feedback's retention. The
questions left unanswered (``lacunes-*.jsonl``) stay in files: they are not part of this move.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.errors import GuichetError
from bot.settings import Settings
from bot.state.database import state_url
from bot.web import feedback
from bot.web.staff import question_sets, runs
from bot.web.staff.accounts import AccountStore, legacy_files
from bot.web.staff.question_sets import QuestionSets
from bot.web.staff.runs import Runs


@dataclass(frozen=True)
class Migrated:
    """What one ``migrate`` imported."""

    accounts: int = 0
    audit: int = 0
    feedback: int = 0
    sets: int = 0
    runs: int = 0


def waiting(settings: Settings) -> list[str]:
    """The files and folders of a file-based deployment still to import, as an IT person finds them on disk."""
    found = [str(settings.staff_dir / name) for name in legacy_files(settings.staff_dir)]
    if question_sets.legacy_files(settings.staff_dir):
        found.append(str(settings.staff_dir / question_sets.FOLDER))
    if runs.legacy_folders(settings.staff_dir):
        found.append(str(settings.staff_dir / runs.FOLDER))
    months = feedback.legacy_files(settings.feedback_dir)
    if months:
        found.append(f"{settings.feedback_dir / feedback.FILE_PREFIX}-*.jsonl ({len(months)})")
    return found


def migrate(settings: Settings, by: str = "cli") -> Migrated:
    """Import what ``waiting`` names into the database of ``settings`` (``GUICHET_DATABASE_URL``, or SQLite in the
    staff folder), then set the files aside. A ``GuichetError`` in French says what stopped an import; running
    the command again imports what is left."""
    if not waiting(settings):
        raise GuichetError(
            f"Rien à importer : ni comptes, ni journal, ni jeux de questions, ni essais dans {settings.staff_dir}, "
            f"ni avis dans {settings.feedback_dir}."
        )
    url = state_url(settings.database_url, settings.staff_dir)
    accounts = AccountStore(settings.staff_dir, settings.database_url)
    counts: dict[str, int] = {}
    if legacy_files(settings.staff_dir):
        counts["accounts"], counts["audit"] = accounts.import_files(by)
    months = feedback.legacy_files(settings.feedback_dir)
    if months:
        counts["feedback"] = feedback.FeedbackStore(url, settings.feedback_retention_days).import_files(
            settings.feedback_dir
        )
        for path in months:
            path.unlink()
    if question_sets.legacy_files(settings.staff_dir):
        counts["sets"] = QuestionSets(url).import_files(settings.staff_dir)
        _set_aside(settings.staff_dir / question_sets.FOLDER)
    if runs.legacy_folders(settings.staff_dir):
        counts["runs"] = Runs(url, settings.gate_file).import_folders(settings.staff_dir)
        _set_aside(settings.staff_dir / runs.FOLDER)
    moved = Migrated(**counts)
    if {"feedback", "sets", "runs"} & set(counts):
        detail = f"{moved.feedback} avis, {moved.sets} jeu(x) de questions, {moved.runs} essai(s)"
        accounts.audit(by, "import des fichiers", detail)
    return moved


def _set_aside(folder: Path) -> Path:
    """Rename an imported folder ``<name>.migrated`` (``.migrated-2``… if an earlier import left one)."""
    target, n = folder.with_name(f"{folder.name}.migrated"), 1
    while target.exists():
        n += 1
        target = folder.with_name(f"{folder.name}.migrated-{n}")
    folder.rename(target)
    return target
