"""Staff accounts and the audit log, in the data volume (``GUICHET_STAFF_DIR``), never in git.

``accounts.json`` holds each agent's name, role and argon2id password hash; ``audit.jsonl`` one line per change
(who, when, what), with no resident data. Messages are in French: staff read them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.errors import GuichetError
from bot.timestamps import now_iso

ROLES = ("admin", "reviewer")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_CHARS = 12


class AccountError(GuichetError):
    """A staff account cannot be created or changed; the message says why, in French."""


@dataclass
class Account:
    name: str
    role: str
    password_hash: str
    enabled: bool = True
    created: str = ""
    epoch: int = 0  # bumped when the account is disabled: its open sessions end


class AccountStore:
    """The accounts file, read on each check (several workers share it) and replaced atomically on change."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path, self.audit_path = directory / "accounts.json", directory / "audit.jsonl"
        self._hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
        self._lock = threading.Lock()

    @cached_property
    def _dummy_hash(self) -> str:
        """Checked against for an unknown name, so it costs as much as a known one (made at the first login)."""
        return self._hasher.hash(secrets.token_hex(16))

    def load(self) -> dict[str, Account]:
        try:
            rows = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {row["name"]: Account(**row) for row in rows}

    def any_enabled(self) -> bool:
        """The staff console is off until a first account exists."""
        return any(a.enabled for a in self.load().values())

    def add(self, name: str, role: str, password: str, by: str = "cli") -> Account:
        if not NAME.match(name):
            raise AccountError(
                "Nom de compte invalide : 2 à 32 caractères, minuscules, chiffres, point, tiret ou souligné."
            )
        if role not in ROLES:
            raise AccountError(f"Rôle inconnu « {role} » : choisissez {' ou '.join(ROLES)}.")
        if len(password) < MIN_PASSWORD_CHARS:
            raise AccountError(f"Mot de passe trop court : au moins {MIN_PASSWORD_CHARS} caractères.")
        with self._lock:
            accounts = self.load()
            if name in accounts:
                raise AccountError(f"Le compte « {name} » existe déjà.")
            account = Account(name, role, self._hasher.hash(password), created=now_iso())
            accounts[name] = account
            self._save(accounts)
        self.audit(by, "compte créé", f"{name} ({role})")
        return account

    def disable(self, name: str, by: str = "cli") -> None:
        with self._lock:
            accounts = self.load()
            if name not in accounts:
                raise AccountError(f"Aucun compte « {name} ».")
            accounts[name].enabled = False
            accounts[name].epoch += 1
            self._save(accounts)
        self.audit(by, "compte désactivé", name)

    def verify(self, name: str, password: str) -> Account | None:
        """The enabled account if the password is right; None otherwise, in about the same time either way."""
        account = self.load().get(name)
        try:
            self._hasher.verify(account.password_hash if account else self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return account if account and account.enabled else None

    def audit(self, who: str, action: str, detail: str = "") -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": now_iso(), "who": who, "action": action, "detail": detail}, ensure_ascii=False)
        with open(self.audit_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    def audit_entries(self) -> list[dict]:
        try:
            return [json.loads(line) for line in self.audit_path.read_text(encoding="utf-8").splitlines() if line]
        except FileNotFoundError:
            return []

    def _save(self, accounts: dict[str, Account]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # hashes: readable by the service only
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump([asdict(a) for a in accounts.values()], out, ensure_ascii=False, indent=1)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(self.path)
