"""Staff sessions without server state (workers scale out): a signed cookie, checked against the accounts file.

The cookie carries the account name, its epoch (bumped when the account is disabled), a random nonce and the
time of the last request; it is signed with HMAC-SHA256 under a key kept in the data volume. A session ends
after ``IDLE_SECONDS`` without a request. Each form carries a CSRF token derived from the session's nonce
(or, on the login page, from a pre-login cookie's nonce).
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

from bot.web.limits import RateLimiter
from bot.web.staff.accounts import Account, AccountStore

SESSION_COOKIE = "guichet_staff"
LOGIN_COOKIE = "guichet_staff_login"
IDLE_SECONDS = 8 * 3600


@dataclass(frozen=True)
class StaffSession:
    account: Account
    nonce: str


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
        # Failed and successful attempts alike: 5 at once, then 2 a minute, per account and per client.
        self.attempts = RateLimiter(per_minute=2, burst=5)

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

    def issue(self, account: Account, nonce: str | None = None) -> str:
        """A cookie value for ``account`` (a fresh nonce at login; the same nonce when the idle clock restarts)."""
        return self.seal(
            {"n": account.name, "e": account.epoch, "r": nonce or secrets.token_urlsafe(16), "t": int(self.clock())}
        )

    def read(self, cookie: str | None) -> StaffSession | None:
        """The session a cookie proves, or None: bad signature, idle too long, account disabled or gone."""
        body = self.unseal(cookie)
        if body is None or self.clock() - body["t"] > IDLE_SECONDS:
            return None
        account = self.store.load().get(body["n"])
        if account is None or not account.enabled or account.epoch != body["e"]:
            return None
        return StaffSession(account, body["r"])

    def csrf_token(self, nonce: str) -> str:
        return self._sign(f"csrf:{nonce}".encode())

    def csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce and token) and hmac.compare_digest(self.csrf_token(nonce or ""), token or "")

    def login_wait(self, name: str, client: str) -> float:
        """Seconds before another login attempt for this name or from this client is allowed (0: now)."""
        return max(self.attempts.wait_seconds(f"name:{name}"), self.attempts.wait_seconds(f"client:{client}"))
