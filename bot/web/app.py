"""HTTP service: the turn endpoint (JSON and streamed), feedback, the chat widget, health and metrics.

>>> app = create_app(lambda: Answerer.from_settings(settings), settings)  # doctest: +SKIP
>>> uvicorn.run(app)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.answer.pipeline import Answerer
from bot.answer.steps.answer_composer import AnswerComposer
from bot.answer.turn import Turn
from bot.errors import GuichetError, explained
from bot.phone import jambonz
from bot.phone.dialog import VoiceDialog
from bot.settings import Settings
from bot.web.feedback import REASONS_FR, FeedbackStore, Reason
from bot.web.limits import BodySizeLimit, RateLimiter, TurnGate
from bot.web.metrics import Metrics
from bot.web.sessions import RecordedTurn, SessionStore

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
MAX_TEXT_CHARS = 4000  # hard cap on the request; the answer path applies the town's own, lower limit
SESSION_ID = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class TurnRequest(BaseModel):
    """One resident message."""

    text: str = Field(max_length=MAX_TEXT_CHARS, description="The resident's message, in French.")
    channel: Literal["web", "voice", "cli", "eval"] = "web"
    session_id: str | None = SESSION_ID


class Citation(BaseModel):
    title: str
    source: str
    url: str
    date: str
    quote: str


class TurnResponse(BaseModel):
    """The public answer object of ``guichet ask --json``, plus the session and the turn ids (for feedback)."""

    answer: str
    outcome: str
    citations: list[Citation]
    seconds: float | None
    session_id: str
    turn_id: str


class FeedbackRequest(BaseModel):
    """A resident's vote on one answer. Only the vote and the fixed-list reason are stored."""

    session_id: str = Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    turn_id: str = Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    useful: bool
    reason: Reason | None = None


class VoiceTurnRequest(BaseModel):
    """One caller turn from any voice gateway (speech-to-text already done)."""

    session_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="The call id; never the caller's number.",
    )
    transcript: str = Field(default="", max_length=MAX_TEXT_CHARS)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    dtmf: str = Field(default="", max_length=8)


class VoiceTurnResponse(BaseModel):
    speech_text: str
    display_text: str
    action: Literal["continue", "repeat", "handoff", "end"]
    handoff_target: str | None = None


MALFORMED = {
    "/api/v1/turn": "La requête est mal formée : il faut un champ « text » contenant votre question.",
    "/api/v1/turn/stream": "La requête est mal formée : il faut un champ « text » contenant votre question.",
    "/api/v1/feedback": "Votre avis est mal formé : il faut session_id, turn_id et useful (vrai ou faux).",
    "/api/v1/voice/turn": "La requête du canal téléphonique est mal formée : il faut session_id et transcript.",
}
HTTP_ERRORS_FR = {
    400: "La requête est mal formée : son contenu n'est pas du JSON valide.",
    404: "Cette adresse n'existe pas sur le service.",
    405: "Cette méthode n'est pas acceptée à cette adresse.",
    415: "Le contenu de la requête doit être du JSON.",
}


def refusal(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    """A quick French refusal; ``Retry-After`` tells clients (and the widget) when to try again."""
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONResponse(status_code=status, headers=headers, content={"error": message})


def starting() -> JSONResponse:
    """503 while the models load."""
    return refusal(503, "Le service démarre, merci de réessayer dans quelques secondes.", 10)


def app_from_environment() -> FastAPI:
    """The app of one worker process, configured from ``GUICHET_*`` (``guichet serve --workers N``)."""
    from bot.settings import load_settings

    settings = load_settings()
    return create_app(lambda: Answerer.from_settings(settings), settings)


def create_app(load_answerer: Callable[[], Answerer], settings: Settings | None = None) -> FastAPI:
    """Build the app; the models and index load in the background so /healthz answers at once."""
    settings = settings or Settings()
    state: dict = {"answerer": None, "error": None, "dialog": None}
    sessions = SessionStore(settings.session_ttl_seconds, settings.session_max_turns, settings.max_sessions)
    feedback = FeedbackStore(settings.feedback_dir, settings.feedback_retention_days)
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    gate = TurnGate(settings.max_turns_in_progress)
    exempt = settings.rate_limit_exempt_addresses
    metrics = Metrics()

    def _load() -> None:
        try:
            answerer = load_answerer()
            state["dialog"] = VoiceDialog(
                answerer, answerer.messages, answerer.town.get("voice", {}), max_calls=settings.max_sessions
            )
            state["answerer"] = answerer
            lock = getattr(answerer.step(AnswerComposer).model, "_lock", None)  # the in-process model's queue
            metrics.model_waiting.set_function(lambda: lock.waiting if lock else 0)
        except Exception as exc:  # noqa: BLE001 - whatever broke, /readyz says so instead of "loading" forever
            state["error"] = explained(exc)
            log.error("Guichet is not ready: %s", state["error"], exc_info=not isinstance(exc, GuichetError))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        feedback.purge()
        loading = asyncio.get_running_loop().run_in_executor(None, _load)
        yield
        await loading

    app = FastAPI(
        title="Guichet",
        version="1",
        lifespan=lifespan,
        description="Assistant automatique des démarches de la mairie (IA).",
    )
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, on_reject=metrics.rejected.labels("too_large").inc
    )
    if settings.allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-Guichet-Session"],
            expose_headers=["Retry-After"],
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        too_long = any(
            e.get("type") == "string_too_long" and tuple(e.get("loc", ()))[-1:] == ("text",) for e in exc.errors()
        )
        if too_long:
            message = "Votre message est trop long. Merci de poser votre question en quelques phrases."
        else:
            message = MALFORMED.get(request.url.path, "La requête est mal formée.")
        return JSONResponse(status_code=422, content={"error": message})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        """French for every client; the gateway's webhooks keep their technical detail for the IT person."""
        if request.url.path.startswith("/voice/jambonz"):
            return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail}, headers=exc.headers)
        message = HTTP_ERRORS_FR.get(exc.status_code, "La requête n'a pas pu être traitée.")
        return JSONResponse(status_code=exc.status_code, content={"error": message}, headers=exc.headers)

    def client_key(request: Request) -> str:
        forwarded = request.headers.get("x-forwarded-for") if settings.trust_proxy_headers else None
        return (forwarded or "").split(",")[0].strip() or (request.client.host if request.client else "?")

    def at_the_door(request: Request, key: str | None = None) -> JSONResponse | None:
        """Refuse at once what the server cannot take: not ready, too many from one client (or call), full."""
        if state["answerer"] is None:
            return starting()
        key = key or client_key(request)
        wait = 0.0 if key in exempt else limiter.wait_seconds(key)
        if wait:
            metrics.rejected.labels("rate_limited").inc()
            message = "Vous posez beaucoup de questions à la suite : merci de patienter un instant."
            return refusal(429, message, math.ceil(wait))
        if not gate.try_enter():
            metrics.rejected.labels("over_capacity").inc()
            return refusal(
                503,
                "L'assistant est très sollicité en ce moment. Merci de réessayer dans un instant.",
                gate.retry_after(),
            )
        metrics.in_flight.set(gate.in_flight)
        return None

    def finished(channel: str, turn: Turn, session_id: str, session, turn_id: str) -> dict:
        """Record the turn in the session and the metrics; the public answer object with its ids."""
        answerer = state["answerer"]
        sources = [c.source for c in turn.citations]
        outcome = str(turn.outcome)
        sessions.record(
            session, RecordedTurn(turn_id, turn.question, outcome, sources, answerer.info["prompt_version"])
        )
        metrics.observe_turn(channel, outcome, turn.trace)
        return {**turn.to_json(), "session_id": session_id, "turn_id": turn_id}

    def released(seconds: float | None = None) -> None:
        gate.leave(seconds)
        metrics.in_flight.set(gate.in_flight)

    @app.post("/api/v1/turn", response_model=TurnResponse, tags=["turn"])
    async def turn(request: TurnRequest, http: Request):
        """Answer one message; the reply carries the citations and the turn's outcome."""
        if refused := at_the_door(http):
            return refused
        session_id, session = sessions.open(request.session_id)
        turn_id, started = uuid.uuid4().hex, time.monotonic()
        try:
            # The model call is CPU-bound and blocking: keep it off the event loop.
            result = await run_in_threadpool(state["answerer"].answer, request.text, session.history(), request.channel)
        finally:
            released(time.monotonic() - started)
        return finished(request.channel, result, session_id, session, turn_id)

    @app.post("/api/v1/turn/stream", tags=["turn"])
    async def turn_stream(request: TurnRequest, http: Request):
        """Server-Sent Events: ``meta`` (ids), ``delta`` (draft text as written), then ``final`` (the answer object).

        A draft sentence holding a figure or a contact is not streamed: it arrives checked, in ``final``, whose
        ``answer`` always replaces the draft.
        """
        if refused := at_the_door(http):
            return refused
        session_id, session = sessions.open(request.session_id)
        turn_id, started = uuid.uuid4().hex, time.monotonic()
        loop, deltas = asyncio.get_running_loop(), asyncio.Queue()

        def on_draft(text: str) -> None:  # called from the model's thread
            loop.call_soon_threadsafe(deltas.put_nowait, text)

        answering = asyncio.ensure_future(
            run_in_threadpool(state["answerer"].answer, request.text, session.history(), request.channel, on_draft)
        )
        # The gate is left when the model is done, even if the client went away meanwhile.
        answering.add_done_callback(lambda _: released(time.monotonic() - started))

        async def events():
            yield {"event": "meta", "data": json.dumps({"session_id": session_id, "turn_id": turn_id})}
            while not answering.done() or not deltas.empty():
                waiting = asyncio.ensure_future(deltas.get())
                await asyncio.wait({waiting, answering}, return_when=asyncio.FIRST_COMPLETED)
                if waiting.done():
                    yield {"event": "delta", "data": json.dumps({"text": waiting.result()}, ensure_ascii=False)}
                else:
                    waiting.cancel()
            try:
                final = finished(request.channel, answering.result(), session_id, session, turn_id)
            except Exception:
                log.exception("turn failed")
                yield {"event": "error", "data": json.dumps({"error": "Une erreur technique est survenue."})}
                return
            yield {"event": "final", "data": json.dumps(final, ensure_ascii=False)}

        return EventSourceResponse(events(), ping=15)

    @app.post("/api/v1/feedback", status_code=201, tags=["turn"])
    async def give_feedback(request: FeedbackRequest, http: Request):
        """Useful or not, with a reason from a fixed list; stored with the turn's outcome and sources only."""
        if limiter.wait_seconds("feedback:" + client_key(http)):
            metrics.rejected.labels("rate_limited").inc()
            return refusal(429, "Merci, votre avis a déjà été pris en compte.", 10)
        recorded = sessions.find_turn(request.session_id, request.turn_id)
        await run_in_threadpool(
            feedback.add,
            request.useful,
            request.reason,
            recorded.outcome if recorded else None,
            recorded.sources if recorded else [],
            recorded.prompt_version if recorded else "",
        )
        metrics.feedback.labels(str(request.useful).lower()).inc()
        return {"message": "Merci pour votre avis."}

    @app.get("/api/v1/widget/config", tags=["widget"])
    async def widget_config() -> dict:
        """Title, welcome text, colours and contact for the chat widget (``config/town.yaml``, ``widget``)."""
        answerer = state["answerer"]
        town = answerer.town if answerer else {}
        widget = town.get("widget", {})
        return {
            "title": widget.get("title", "Assistant de la mairie"),
            "welcome": widget.get("welcome", ""),
            "colors": widget.get("colors", {}),
            "contact": town.get("reception", ""),
            "about_url": "a-propos",
            "max_question_chars": settings.max_question_chars,
            "feedback_reasons": REASONS_FR,
        }

    @app.get("/widget.js", include_in_schema=False)
    async def widget_script():
        return FileResponse(
            STATIC / "widget.js", media_type="text/javascript", headers={"Cache-Control": "max-age=300"}
        )

    @app.get("/widget.css", include_in_schema=False)
    async def widget_style():
        return FileResponse(STATIC / "widget.css", media_type="text/css", headers={"Cache-Control": "max-age=300"})

    @app.get("/demo", response_class=HTMLResponse, include_in_schema=False)
    async def demo() -> str:
        """A fake town homepage with the widget embedded, as a webmaster would do it."""
        return (STATIC / "demo.html").read_text(encoding="utf-8")

    @app.get("/a-propos", response_class=HTMLResponse)
    async def about() -> str:
        """The page residents can read: what the assistant is, which model runs, what is (not) kept."""
        return (STATIC / "a-propos.html").read_text(encoding="utf-8")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        if state["answerer"] is None:
            reason = state["error"] or "loading models and index"
            return JSONResponse(status_code=503, content={"status": "not ready", "reason": reason})
        return {"status": "ready", "index": state["answerer"].info["index"].get("corpus_hash")}

    if settings.metrics_enabled:

        @app.get("/metrics", include_in_schema=False)
        async def prometheus() -> Response:
            return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    def voice_gateway(http: Request) -> JSONResponse | None:
        """A gateway proves itself with ``Authorization: Bearer <GUICHET_VOICE_WEBHOOK_SECRET>``."""
        if not settings.voice_secrets:
            return refusal(503, "Le canal téléphonique est désactivé (GUICHET_VOICE_WEBHOOK_SECRET n'est pas défini).")
        scheme, _, token = http.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not any(
            hmac.compare_digest(token.strip().encode(), secret.encode()) for secret in settings.voice_secrets
        ):
            return refusal(401, "Authentification de la passerelle téléphonique manquante ou invalide.")
        return None

    @app.post("/api/v1/voice/turn", response_model=VoiceTurnResponse, tags=["voice"])
    async def voice_turn(request: VoiceTurnRequest, http: Request):
        """One caller turn from any voice gateway; the gateway authenticates with the phone channel's secret."""
        # One gateway carries every call: each call is rate-limited on its own, all share the capacity.
        if refused := voice_gateway(http) or at_the_door(http, key="call:" + request.session_id):
            return refused
        started = time.monotonic()
        try:
            reply = await run_in_threadpool(
                state["dialog"].handle, request.session_id, request.transcript, request.confidence, request.dtmf
            )
        finally:
            released(time.monotonic() - started)
        return asdict(reply)

    app.include_router(jambonz.router(lambda: state["dialog"], settings.voice_secrets))
    return app
