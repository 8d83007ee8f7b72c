"""Where the service keeps its own state: a SQL database, SQLite by default, PostgreSQL for several machines.

``GUICHET_DATABASE_URL`` names it (``postgresql+psycopg://user:password@host/guichet``); left empty, a SQLite file
in the staff folder holds it, with nothing to install. The schema is Alembic's migrations
(``bot/state/migrations``), applied when the database is first opened by a process: every worker and every command
finds it up to date.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, select

from bot.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x6775_6964  # PostgreSQL advisory lock held while the schema is brought up to date
_opened: dict[str, Database] = {}
_opening = threading.Lock()


def sqlite_url(path: Path) -> str:
    """The URL of a SQLite file, created readable by the service only (it holds password hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    return f"sqlite:///{path}"


def state_url(database_url: str, staff_dir: Path) -> str:
    """Where the service keeps its state: ``GUICHET_DATABASE_URL``, else the SQLite file of the staff folder."""
    return database_url or sqlite_url(staff_dir / "guichet.db")


class Database:
    """One engine per URL and process, its schema brought to the latest migration when opened."""

    def __init__(self, url: str):
        self.url = url
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=True)
        except Exception as exc:  # noqa: BLE001 - a bad URL or a missing driver: said to the IT person
            raise ConfigError(f"GUICHET_DATABASE_URL: cannot use {_safe(url)}: {exc}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_settings)
            event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))

    @classmethod
    def open(cls, url: str) -> Database:
        """The database at ``url``, migrated (once per process)."""
        with _opening:
            if url not in _opened:
                database = cls(url)
                database.upgrade()
                _opened[url] = database
            return _opened[url]

    def upgrade(self) -> None:
        """Apply the migrations this database lacks."""
        from alembic import command

        config = _migrations()
        try:
            with self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":  # workers starting together migrate one at a time
                    connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except Exception as exc:  # noqa: BLE001 - unreachable server, wrong password: said to the IT person
            raise ConfigError(f"Database {_safe(self.url)}: cannot bring its schema up to date: {exc}") from None

    @staticmethod
    def head() -> str:
        """The latest migration this code knows."""
        from alembic.script import ScriptDirectory

        return str(ScriptDirectory.from_config(_migrations()).get_current_head())

    def revision(self) -> str | None:
        """The migration this database is at."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction: committed at the end of the block, rolled back on an error."""
        with self.engine.begin() as connection:
            yield connection


def _migrations() -> Any:
    """Alembic's configuration: the migrations of ``bot/state/migrations``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _sqlite_settings(dbapi_connection: Any, _record: Any) -> None:
    # Python's sqlite3 opens transactions itself; SQLAlchemy's "begin" event issues BEGIN IMMEDIATE instead, so
    # that two workers writing at once wait for each other (busy_timeout) rather than fail.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def _safe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not even a URL
        return "(URL illisible)"
