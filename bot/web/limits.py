"""What protects a small server: request size, per-client rate and a bounded number of turns in progress.

Beyond capacity the service answers at once (413, 429 or 503 with ``Retry-After``) instead of queueing
without end. Client addresses are only kept in memory, as rate-limit keys, and never logged.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE = "Votre message est trop volumineux. Merci de poser votre question en quelques phrases."


def take_token(tokens: float, elapsed: float, per_minute: float, burst: int) -> tuple[float, float]:
    """One step of a token bucket holding ``tokens`` ``elapsed`` seconds ago, refilled at ``per_minute`` up to
    ``burst``: (the tokens left, 0 if one was taken, else the seconds until one can be).

    >>> take_token(1.0, 0.0, 60, 1), take_token(0.0, 0.5, 60, 1)
    ((0.0, 0.0), (0.5, 0.5))
    """
    rate = per_minute / 60.0
    tokens = min(float(burst), tokens + elapsed * rate)
    return (tokens - 1, 0.0) if tokens >= 1 else (tokens, (1 - tokens) / rate)


class RateLimiter:
    """A token bucket per client: ``burst`` turns at once, then one every ``60 / per_minute`` seconds.

    >>> limiter = RateLimiter(per_minute=60, burst=1, clock=lambda: 0.0)
    >>> limiter.wait_seconds("a"), limiter.wait_seconds("a")
    (0.0, 1.0)
    """

    def __init__(self, per_minute: float, burst: int, max_clients: int = 10_000, clock=time.monotonic):
        self.per_minute, self.burst, self.max_clients, self.clock = per_minute, burst, max_clients, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, updated at)

    def wait_seconds(self, key: str) -> float:
        """0 and one token taken if ``key`` may go now, else how long until it may."""
        now = self.clock()
        tokens, updated = self._buckets.pop(key, (float(self.burst), now))
        tokens, wait = take_token(tokens, now - updated, self.per_minute, self.burst)
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_clients:  # forget the least recently seen clients
            self._buckets.popitem(last=False)
        return wait


class TurnGate:
    """Admits at most ``capacity`` turns in progress (answering or waiting for the model).

    The model itself answers one turn at a time; admitted turns wait for it in arrival order, while their
    retrieval and I/O go on concurrently. ``retry_after`` estimates when a refused client should come back.
    """

    def __init__(self, capacity: int, seconds_per_turn: float = 3.0):
        self.capacity, self.in_flight, self.seconds_per_turn = capacity, 0, seconds_per_turn

    def try_enter(self) -> bool:
        if self.in_flight >= self.capacity:
            return False
        self.in_flight += 1
        return True

    def leave(self, seconds: float | None = None) -> None:
        self.in_flight -= 1
        if seconds is not None:  # a moving average of the recent turns' duration
            self.seconds_per_turn = 0.8 * self.seconds_per_turn + 0.2 * seconds

    def retry_after(self) -> int:
        return max(1, math.ceil(self.in_flight * self.seconds_per_turn))


class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 with a French message, before parsing.
    ``larger`` raises the cap under some path prefixes (a question set uploaded from the staff console)."""

    def __init__(self, app: ASGIApp, max_bytes: int, on_reject=lambda: None, larger: dict[str, int] | None = None):
        self.app, self.max_bytes, self.on_reject = app, max_bytes, on_reject
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        cap = next((n for prefix, n in self.larger.items() if path.startswith(prefix)), self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            return await self._reject(scope, receive, send)
        # Bodies here are small: read the whole body (up to the cap), then hand it on.
        body, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, receive, send)  # client gone: let the app see it
            body.append(message.get("body", b""))
            more = message.get("more_body", False)
            if sum(map(len, body)) > cap:
                return await self._reject(scope, receive, send)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.on_reject()
        await JSONResponse({"error": TOO_LARGE}, status_code=413)(scope, receive, send)
