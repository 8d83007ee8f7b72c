"""Short conversations, kept in memory only: a session is a few recent turns that expire.

Nothing here is ever written to disk. Each worker process has its own store; behind a load balancer, route a
session to the same worker (sticky cookie) or accept that a follow-up on another worker starts afresh.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class RecordedTurn:
    """What a session remembers of one turn: enough for follow-ups and feedback, nothing more."""

    turn_id: str
    question: str  # standalone and already masked by the input guard
    outcome: str
    sources: list[str]
    prompt_version: str


@dataclass
class Session:
    turns: list[RecordedTurn] = field(default_factory=list)
    last_seen: float = 0.0

    def history(self) -> list[dict]:
        return [{"question": t.question, "outcome": t.outcome} for t in self.turns]


class SessionStore:
    """Sessions by id, least recently used first; expired after ``ttl_seconds`` of silence.

    >>> store = SessionStore(ttl_seconds=60, max_turns=2, max_sessions=10)
    >>> sid, session = store.open(None)
    >>> store.open(sid)[1] is session
    True
    >>> store.open("chosen-by-the-client")[0] == "chosen-by-the-client"  # ids are minted here, never adopted
    False
    """

    def __init__(self, ttl_seconds: float, max_turns: int, max_sessions: int, clock=time.monotonic):
        self.ttl, self.max_turns, self.max_sessions, self.clock = ttl_seconds, max_turns, max_sessions, clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def open(self, session_id: str | None) -> tuple[str, Session]:
        """The live session with this id, or a new one under a fresh, unguessable id.

        An id the server did not mint, or one that expired, starts a new session: a client cannot choose an id,
        nor reach another's conversation by guessing one.
        """
        now = self.clock()
        self._expire(now)
        session = self._sessions.pop(session_id, None) if session_id else None
        if session is None:
            session_id, session = secrets.token_urlsafe(24), Session()
        session.last_seen = now
        self._sessions[session_id] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session_id, session

    def record(self, session: Session, turn: RecordedTurn) -> None:
        session.turns = [*session.turns, turn][-self.max_turns :]

    def find_turn(self, session_id: str, turn_id: str) -> RecordedTurn | None:
        self._expire(self.clock())
        session = self._sessions.get(session_id)
        return next((t for t in session.turns if t.turn_id == turn_id), None) if session else None

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self, now: float) -> None:
        while self._sessions:
            oldest_id, oldest = next(iter(self._sessions.items()))
            if now - oldest.last_seen < self.ttl:
                return
            del self._sessions[oldest_id]
