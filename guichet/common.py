"""What every command shares: the consoles, the settings read once, one-line failures, the answerer."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from bot.errors import GuichetError, explained
from bot.settings import Settings, load_settings

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

IndexOpt = Annotated[Path | None, typer.Option("--index", help="Index directory (default: GUICHET_INDEX_DIR).")]


def settings(**overrides) -> Settings:
    """The settings, or exit with status 2 and the key at fault."""
    try:
        return load_settings(**overrides)
    except GuichetError as exc:
        fail(exc)


def fail(exc: BaseException) -> NoReturn:
    """Print an expected failure in one line (its fix included) and exit with status 2."""
    err.print(f"[bold red]Erreur :[/] {explained(exc)}")
    raise typer.Exit(2)


def answerer(index: Path | None, **overrides):
    """The answerer over ``index`` with the real models, or exit with status 2 saying why it could not load."""
    from bot.answer.pipeline import Answerer

    loaded = settings(index_dir=index, **overrides)
    try:
        return Answerer.from_settings(loaded)
    except Exception as exc:  # noqa: BLE001 - any failure to load ends in one line and exit status 2
        if not isinstance(exc, GuichetError):  # unexpected: the traceback goes to the log, as the message says
            logging.getLogger("guichet").error("loading failed", exc_info=True)
        fail(exc)


def print_summary(summary: dict) -> None:
    """An evaluation summary as a table of its headline figures."""
    table = Table("indicateur", "valeur", title="Résultats de l'évaluation")
    for key, value in summary.items():
        if key not in ("by_category", "run"):
            table.add_row(key, str(value))
    out.print(table)
