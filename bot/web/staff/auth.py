"""Staff sessions, kept on the server (``AccountStore``): logging out or disabling an account ends them at once.

The cookie carries the session's random token and a nonce, signed with HMAC-SHA256 under a key kept in the data
volume; the database keeps the token's hash, when the session began and its last request. A session ends after
``IDLE_SECONDS`` without a request, and ``MAX_SECONDS`` after it began whatever happens. Each form carries a CSRF
token derived from the session's nonce (or, on the login page, from a pre-login cookie's nonce). Login attempts are
counted in the database, so every worker and machine shares the count.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.web.staff.accounts import Account, AccountStore

SESSION_COOKIE = "guichet_staff"
LOGIN_COOKIE = "guichet_staff_login"
IDLE_SECONDS = 8 * 3600
MAX_SECONDS = 12 * 3600  # a working day: then the agent signs in again
LOGIN_PER_MINUTE, LOGIN_BURST = 2, 5  # attempts per account and per client, failed and successful alike


@dataclass(frozen=True)
class StaffSession:
    account: Account
    nonce: str
    token: str


def signing_key(directory: Path) -> bytes:
    """The key that signs staff cookies, created once in the data volume (0600) and shared by every worker."""
    path = directory / "session.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker created it first
            return path.read_bytes()
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
        return path.read_bytes()


class StaffAuth:
    def __init__(self, store: AccountStore, key: bytes, clock: Callable[[], float] = time.time):
        self.store, self.key, self.clock = store, key, clock

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self.key, payload, hashlib.sha256).hexdigest()

    def seal(self, data: dict) -> str:
        """``data`` as a tamper-proof string (JSON, base64, HMAC): a form or cookie carries it back unchanged."""
        payload = base64.urlsafe_b64encode(json.dumps(data, ensure_ascii=False).encode())
        return f"{payload.decode()}.{self._sign(payload)}"

    def unseal(self, value: str | None) -> dict | None:
        """What ``seal`` sealed, or None if the string was altered."""
        if not value or "." not in value:
            return None
        payload, signature = value.rsplit(".", 1)
        if not hmac.compare_digest(self._sign(payload.encode()), signature):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload.encode()))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def open(self, account: Account) -> StaffSession:
        """A new session for ``account``, at login."""
        token = self.store.open_session(account.name, self.clock(), IDLE_SECONDS)
        return StaffSession(account, secrets.token_urlsafe(16), token)

    def cookie(self, session: StaffSession) -> str:
        """The cookie value that proves ``session``."""
        return self.seal({"s": session.token, "r": session.nonce})

    def read(self, cookie: str | None) -> StaffSession | None:
        """The session a cookie proves, or None: bad signature, unknown or ended session, idle too long, too old,
        account disabled."""
        body = self.unseal(cookie)
        if body is None or not isinstance(body.get("s"), str) or not isinstance(body.get("r"), str):
            return None
        account = self.store.session(body["s"], self.clock(), IDLE_SECONDS, MAX_SECONDS)
        return StaffSession(account, body["r"], body["s"]) if account else None

    def close(self, session: StaffSession) -> None:
        """Log out: the session ends on every worker at once."""
        self.store.close_session(session.token)

    def csrf_token(self, nonce: str) -> str:
        return self._sign(f"csrf:{nonce}".encode())

    def csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce and token) and hmac.compare_digest(self.csrf_token(nonce or ""), token or "")

    def login_wait(self, name: str, client: str) -> float:
        """Seconds before another login attempt for this name or from this client is allowed (0: now)."""
        now = self.clock()
        by_name = self.store.throttle(f"name:{name}", LOGIN_PER_MINUTE, LOGIN_BURST, now)
        return max(by_name, self.store.throttle(f"client:{client}", LOGIN_PER_MINUTE, LOGIN_BURST, now))
