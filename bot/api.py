"""HTTP service: the channel-agnostic turn endpoint, health and readiness.

>>> app = create_app(lambda: answerer)  # doctest: +SKIP
>>> uvicorn.run(app)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from bot import jambonz
from bot.errors import GuichetError
from bot.pipeline import Answerer
from bot.voice import VoiceDialog

log = logging.getLogger(__name__)
ABOUT_PAGE = Path(__file__).parent / "static" / "a-propos.html"
MAX_TEXT_CHARS = 4000  # hard cap on the request; the answer path applies the town's own, lower limit


class TurnRequest(BaseModel):
    """One resident message."""

    text: str = Field(max_length=MAX_TEXT_CHARS, description="The resident's message, in French.")
    channel: Literal["web", "voice", "cli", "eval"] = "web"
    session_id: str | None = Field(default=None, max_length=64)


class Citation(BaseModel):
    title: str
    source: str
    url: str
    date: str
    quote: str


class TurnResponse(BaseModel):
    """The answer object of ``guichet ask --json``, plus the session id."""

    answer: str
    outcome: str
    citations: list[Citation]
    metrics: dict
    session_id: str


class VoiceTurnRequest(BaseModel):
    """One caller turn from any voice gateway (speech-to-text already done)."""

    session_id: str = Field(max_length=64, description="The call id; never the caller's number.")
    transcript: str = Field(default="", max_length=MAX_TEXT_CHARS)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    dtmf: str = Field(default="", max_length=8)


class VoiceTurnResponse(BaseModel):
    speech_text: str
    display_text: str
    action: Literal["continue", "repeat", "handoff", "end"]
    handoff_target: str | None = None


def starting() -> JSONResponse:
    """503 while the models load, with a French message and when to retry."""
    return JSONResponse(
        status_code=503,
        headers={"Retry-After": "10"},
        content={"error": "Le service démarre, merci de réessayer dans quelques secondes."},
    )


def create_app(load_answerer: Callable[[], Answerer], voice_secrets: list[str] = ()) -> FastAPI:
    """Build the app; the models and index load in the background so /healthz answers at once."""
    state: dict = {"answerer": None, "error": None, "dialog": None}

    def _load() -> None:
        try:
            answerer = load_answerer()
            state["dialog"] = VoiceDialog(answerer, answerer.messages, answerer.town.get("voice", {}))
            state["answerer"] = answerer
        except GuichetError as exc:
            state["error"] = str(exc)
            log.error("Guichet is not ready: %s", exc)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        loading = asyncio.get_running_loop().run_in_executor(None, _load)
        yield
        await loading

    app = FastAPI(
        title="Guichet",
        version="1",
        lifespan=lifespan,
        description="Assistant automatique des démarches de la mairie (IA).",
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError):
        too_long = any(e.get("type") == "string_too_long" for e in exc.errors())
        message = (
            "Votre message est trop long. Merci de poser votre question en quelques phrases."
            if too_long
            else "La requête est mal formée : il faut un champ « text » contenant votre question."
        )
        return JSONResponse(status_code=422, content={"error": message})

    @app.get("/a-propos", response_class=HTMLResponse)
    async def about() -> str:
        """The page residents can read: what the assistant is, which model runs, what is (not) kept."""
        return ABOUT_PAGE.read_text(encoding="utf-8")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        if state["answerer"] is None:
            reason = state["error"] or "loading models and index"
            return JSONResponse(status_code=503, content={"status": "not ready", "reason": reason})
        return {"status": "ready", "index": state["answerer"].info["index"].get("corpus_hash")}

    @app.post("/api/v1/turn", response_model=TurnResponse)
    async def turn(request: TurnRequest):
        answerer = state["answerer"]
        if answerer is None:
            return starting()
        # The model call is CPU-bound and blocking: keep it off the event loop.
        result = await run_in_threadpool(answerer.answer, request.text, None, request.channel)
        return {**result.to_json(), "session_id": request.session_id or uuid.uuid4().hex}

    @app.post("/api/v1/voice/turn", response_model=VoiceTurnResponse, tags=["voice"])
    async def voice_turn(request: VoiceTurnRequest):
        dialog = state["dialog"]
        if dialog is None:
            return starting()
        reply = await run_in_threadpool(
            dialog.handle, request.session_id, request.transcript, request.confidence, request.dtmf
        )
        return asdict(reply)

    app.include_router(jambonz.router(lambda: state["dialog"], list(voice_secrets)))
    return app
