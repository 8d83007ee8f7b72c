"""What the HTTP API takes and gives: the request bodies and the public answer, as validated types."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from bot.web.feedback import Reason

MAX_TEXT_CHARS = 4000  # hard cap on the request; the answer path applies the town's own, lower limit
IDENTIFIER = r"^[A-Za-z0-9_-]+$"


class TurnRequest(BaseModel):
    """One resident message."""

    text: str = Field(max_length=MAX_TEXT_CHARS, description="The resident's message, in French.")
    channel: Literal["web", "voice", "cli", "eval"] = "web"
    session_id: str | None = Field(default=None, max_length=64, pattern=IDENTIFIER)


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

    session_id: str = Field(max_length=64, pattern=IDENTIFIER)
    turn_id: str = Field(max_length=64, pattern=IDENTIFIER)
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


class SynthesisRequest(BaseModel):
    """What a gateway asks its custom text-to-speech vendor (jambonz's custom TTS API)."""

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    language: str = Field(default="fr-FR", pattern=r"^fr([-_][A-Za-z]{2})?$")  # French only
    voice: str | None = Field(default=None, max_length=64)  # the engine's voice; an unknown one gets the town's
    type: Literal["text", "ssml"] = "text"
