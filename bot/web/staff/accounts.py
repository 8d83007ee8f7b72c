"""Staff accounts, their sessions and the audit log, in the service's database (``bot.state``), never in git.

An account is a name, a role and an argon2id password hash. A commune's agents are administrators or reviewers of
its console (in its own database); the syndicate's administrators manage the communes (in the deployment's). A store
reads and writes one kind only, so an account of one kind never signs in, nor holds a session, where the other's
pages are. A session lives on the server: logging out or disabling the account ends it at once. The audit log is
one row per change (who, when, what), with no resident data; each row carries the hash of the one before it, so
``verify_audit`` finds a row changed, removed or inserted behind the service's back. Messages are in French: staff
read them.

Deployments from before the database kept ``accounts.json`` and ``audit.jsonl`` in the staff folder;
``import_files`` (``guichet staff migrate``) moves them in, once.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.errors import GuichetError
from bot.state.database import Database, state_url
from bot.state.tables import accounts, audit, login_throttle, staff_sessions
from bot.timestamps import now_iso
from bot.web.limits import take_token

COMMUNE_ROLES = ("admin", "reviewer")  # a commune's console
SYNDICATE_ROLES = ("syndicate",)  # the syndicate's pages: the deployment's communes (``bot.web.staff.syndicate``)
ROLE_NAMES_FR = {"admin": "administrateur", "reviewer": "relecteur", "syndicate": "administrateur du syndicat"}
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_CHARS = 12
FIRST = "0" * 64  # what the audit log's first row follows
LEGACY_FILES = ("accounts.json", "audit.jsonl")
AUDIT_LOCK = 0x6775_6963  # PostgreSQL advisory lock taken while a row is appended to the audit log


class AccountError(GuichetError):
    """A staff account cannot be created or changed; the message says why, in French."""


@dataclass
class Account:
    name: str
    role: str
    password_hash: str
    enabled: bool = True
    created: str = ""


def chained(previous: str, at: str, who: str, action: str, detail: str) -> str:
    """The hash of an audit row: its fields and the hash of the row before it.

    >>> chained(FIRST, "2026-12-07T10:00:00+00:00", "claire", "connexion", "")[:12]
    'd7362d808920'
    """
    row = json.dumps([previous, at, who, action, detail], ensure_ascii=False)
    return hashlib.sha256(row.encode()).hexdigest()


def legacy_files(directory: Path) -> list[str]:
    """Files of a file-based deployment still waiting for ``guichet staff migrate`` (no database opened)."""
    return [name for name in LEGACY_FILES if (directory / name).exists()]


def token_id(token: str) -> str:
    """What the sessions table keeps of a cookie's token: its hash."""
    return hashlib.sha256(token.encode()).hexdigest()


class AccountStore:
    """Accounts, sessions, login throttling and the audit log, in the database at ``database_url`` (a SQLite file
    in ``directory`` when empty). Several workers and machines share it. The store sees the accounts of ``roles``
    only: a commune console's (the default) or the syndicate's; the audit log is the database's, whoever writes."""

    def __init__(self, directory: Path, database_url: str = "", roles: tuple[str, ...] = COMMUNE_ROLES):
        self.directory, self.roles = directory, roles
        self.db = Database.open(state_url(database_url, directory))
        self._hasher = PasswordHasher()  # argon2id with the library's current recommended parameters

    @cached_property
    def _dummy_hash(self) -> str:
        """Checked against for an unknown name, so it costs as much as a known one (made at the first login)."""
        return self._hasher.hash(secrets.token_hex(16))

    @property
    def _own(self) -> ColumnElement[bool]:
        """The accounts this store sees: those of its roles."""
        return accounts.c.role.in_(self.roles)

    def load(self) -> dict[str, Account]:
        with self.db.transaction() as db:
            rows = db.execute(select(accounts).where(self._own).order_by(accounts.c.name)).mappings().all()
        return {row["name"]: Account(**row) for row in rows}

    def any_enabled(self) -> bool:
        """The pages these accounts open are off until a first one exists."""
        with self.db.transaction() as db:
            return bool(db.execute(select(func.count()).where(accounts.c.enabled, self._own)).scalar())

    def add(self, name: str, role: str, password: str, by: str = "cli") -> Account:
        if not NAME.match(name):
            raise AccountError(
                "Nom de compte invalide : 2 à 32 caractères, minuscules, chiffres, point, tiret ou souligné."
            )
        if role not in self.roles:
            raise AccountError(f"Rôle inconnu « {role} » : choisissez {' ou '.join(self.roles)}.")
        if len(password) < MIN_PASSWORD_CHARS:
            raise AccountError(f"Mot de passe trop court : au moins {MIN_PASSWORD_CHARS} caractères.")
        account = Account(name, role, self._hasher.hash(password), created=now_iso())
        try:
            with self.db.transaction() as db:
                db.execute(insert(accounts).values(**account.__dict__))
                self._append(db, by, "compte créé", f"{name} ({role})")
        except IntegrityError:
            raise AccountError(f"Le compte « {name} » existe déjà.") from None
        return account

    def disable(self, name: str, by: str = "cli") -> None:
        """Disable an account; its open sessions end at once."""
        with self.db.transaction() as db:
            disabled = update(accounts).where(accounts.c.name == name, self._own).values(enabled=False)
            if not db.execute(disabled).rowcount:
                raise AccountError(f"Aucun compte « {name} ».")
            db.execute(delete(staff_sessions).where(staff_sessions.c.account == name))
            self._append(db, by, "compte désactivé", name)

    def verify(self, name: str, password: str) -> Account | None:
        """The enabled account if the password is right; None otherwise, in about the same time either way."""
        account = self.load().get(name)
        try:
            self._hasher.verify(account.password_hash if account else self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return account if account and account.enabled else None

    # Sessions

    def open_session(self, name: str, now: float, idle_seconds: float) -> str:
        """A new session for ``name``: the token its cookie carries (the table keeps only its hash). Sessions idle
        longer than ``idle_seconds`` (never read again, so never removed by ``session``) are forgotten here."""
        token = secrets.token_urlsafe(32)
        with self.db.transaction() as db:
            db.execute(delete(staff_sessions).where(staff_sessions.c.seen < now - idle_seconds))
            db.execute(insert(staff_sessions).values(id=token_id(token), account=name, created=now, seen=now))
        return token

    def session(self, token: str, now: float, idle_seconds: float, max_seconds: float) -> Account | None:
        """The enabled account of a live session (and its idle clock restarted), or None: unknown, idle too long,
        older than ``max_seconds``, or its account disabled."""
        key = token_id(token)
        with self.db.transaction() as db:
            opened = (staff_sessions.c.created.label("opened"), staff_sessions.c.seen)
            query = select(accounts, *opened).join(staff_sessions).where(staff_sessions.c.id == key, self._own)
            row = db.execute(query).mappings().first()
            if row is None:
                return None
            if not row["enabled"] or now - row["seen"] > idle_seconds or now - row["opened"] > max_seconds:
                db.execute(delete(staff_sessions).where(staff_sessions.c.id == key))
                return None
            db.execute(update(staff_sessions).where(staff_sessions.c.id == key).values(seen=now))
        return Account(**{k: row[k] for k in ("name", "role", "password_hash", "enabled", "created")})

    def close_session(self, token: str) -> None:
        with self.db.transaction() as db:
            db.execute(delete(staff_sessions).where(staff_sessions.c.id == token_id(token)))

    # Login throttling, shared by every worker

    def throttle(self, key: str, per_minute: float, burst: int, now: float) -> float:
        """Take one attempt from ``key``'s bucket (``burst`` at once, then ``per_minute``): 0 if allowed, else the
        seconds until the next one is."""
        with self.db.transaction() as db:
            # a bucket untouched long enough to be full again is the same as none: forgotten
            db.execute(delete(login_throttle).where(login_throttle.c.updated < now - burst * 60 / per_minute))
            row = db.execute(select(login_throttle).where(login_throttle.c.key == key)).mappings().first()
            before, elapsed = (float(burst), 0.0) if row is None else (row["tokens"], now - row["updated"])
            tokens, wait = take_token(before, elapsed, per_minute, burst)
            if row is None:
                db.execute(insert(login_throttle).values(key=key, tokens=tokens, updated=now))
            else:
                db.execute(update(login_throttle).where(login_throttle.c.key == key).values(tokens=tokens, updated=now))
        return wait

    # The audit log

    def audit(self, who: str, action: str, detail: str = "", at: str | None = None) -> None:
        """Append a row to the audit log; appends from several workers wait for each other, and a row that would
        follow the same row as another is refused by the database (``previous`` is unique)."""
        with self.db.transaction() as db:
            self._append(db, who, action, detail, at)

    @staticmethod
    def _append(db: Connection, who: str, action: str, detail: str, at: str | None = None) -> None:
        if db.dialect.name == "postgresql":  # appends wait for each other (SQLite's BEGIN IMMEDIATE does so there)
            db.execute(select(func.pg_advisory_xact_lock(AUDIT_LOCK)))
        previous = db.execute(select(audit.c.hash).order_by(audit.c.id.desc()).limit(1)).scalar() or FIRST
        at = at or now_iso()
        row = {"at": at, "who": who[:64], "action": action, "detail": detail}
        db.execute(insert(audit).values(**row, previous=previous, hash=chained(previous, **row)))

    def audit_entries(self) -> list[dict[str, Any]]:
        with self.db.transaction() as db:
            rows = db.execute(select(audit.c.at, audit.c.who, audit.c.action, audit.c.detail).order_by(audit.c.id))
            return [dict(r) for r in rows.mappings()]

    def verify_audit(self) -> tuple[int, int | None]:
        """(rows read, the id of the first row whose chain is broken, or None): each row must follow the one
        before it and carry the hash of its own fields."""
        previous, count = FIRST, 0
        with self.db.transaction() as db:
            for row in db.execute(select(audit).order_by(audit.c.id)).mappings():
                count += 1
                fields = {k: row[k] for k in ("at", "who", "action", "detail")}
                if row["previous"] != previous or row["hash"] != chained(previous, **fields):
                    return count, row["id"]
                previous = row["hash"]
        return count, None

    # From a file-based deployment

    def import_files(self, by: str = "cli") -> tuple[int, int]:
        """Move ``accounts.json`` and ``audit.jsonl`` (written by Guichet before the database) into the database:
        (accounts, audit rows). The files are renamed ``*.migrated``, kept for the record."""
        found = legacy_files(self.directory)
        if not found:
            raise AccountError(f"Rien à importer : ni accounts.json ni audit.jsonl dans {self.directory}.")
        if self.load():
            raise AccountError(
                "La base contient déjà des comptes : l'import ne se fait qu'une fois, sur une base vide."
            )
        rows = self._read_legacy()
        with self.db.transaction() as db:
            for account in rows["accounts"]:
                db.execute(insert(accounts).values(**account))
            for entry in rows["audit"]:
                self._append(db, entry["who"], entry["action"], entry.get("detail", ""), entry["at"])
            self._append(db, by, "import des fichiers", ", ".join(found))
        for name in found:
            (self.directory / name).replace(self.directory / f"{name}.migrated")
        return len(rows["accounts"]), len(rows["audit"])

    def _read_legacy(self) -> dict[str, list[dict[str, Any]]]:
        """The legacy files' rows, checked before anything is written."""
        read: dict[str, list[dict[str, Any]]] = {"accounts": [], "audit": []}
        path = self.directory / "accounts.json"
        try:
            if path.exists():
                for row in json.loads(path.read_text(encoding="utf-8")):
                    account = {k: row[k] for k in ("name", "role", "password_hash")}
                    read["accounts"].append(
                        account | {"enabled": bool(row.get("enabled", True))} | {"created": str(row.get("created", ""))}
                    )
            path = self.directory / "audit.jsonl"
            if path.exists():
                for line in path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        entry = json.loads(line)
                        read["audit"].append(
                            {k: str(entry[k]) for k in ("at", "who", "action")}
                            | {"detail": str(entry.get("detail", ""))}
                        )
        except (ValueError, KeyError, TypeError) as exc:
            raise AccountError(f"{path} est illisible ({exc}) : rien n'a été importé.") from None
        return read
