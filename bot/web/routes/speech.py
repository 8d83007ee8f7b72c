"""Guichet as the voice gateway's speech vendor: text-to-speech on this server, so no third party hears a call.

``POST /speech/tts`` follows jambonz's custom TTS API: ``Authorization: Bearer <GUICHET_SPEECH_API_KEY>``,
``{language, voice, type: text|ssml, text}`` in, 8 kHz audio out: MP3 by default, WAV or L16 when the
``Accept`` header asks for it.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from bot.engines.speech import CONTENT_TYPES, PHONE_RATE, Format, SynthesisError
from bot.web.schemas import SynthesisRequest
from bot.web.service import STARTING, Refused, service_of

log = logging.getLogger(__name__)
router = APIRouter(prefix="/speech", tags=["speech"])


def wanted_format(accept: str) -> Format:
    """The audio format an ``Accept`` header asks for; MP3 unless it names WAV or L16.

    >>> wanted_format("audio/wav"), wanted_format("audio/L16;rate=8000"), wanted_format("*/*")
    ('wav', 'l16', 'mp3')
    """
    accept = accept.lower()
    if "audio/wav" in accept or "audio/x-wav" in accept:
        return "wav"
    if "audio/l16" in accept:
        return "l16"
    return "mp3"


@router.post("/tts")
async def synthesize(body: SynthesisRequest, request: Request) -> Response:
    service = service_of(request)
    service.check_speech_client(request)
    if service.speech is None:
        raise Refused(503, STARTING, 10)
    fmt = wanted_format(request.headers.get("accept", ""))
    try:
        audio, cached = await run_in_threadpool(service.speech.speak, body.text, body.voice, body.type == "ssml", fmt)
    except SynthesisError as exc:
        log.warning("speech synthesis failed: %s", exc)  # the engine's message; never the text spoken
        raise Refused(500, "La synthèse vocale a échoué pour ce texte.") from None
    media_type = CONTENT_TYPES[fmt] + (f";rate={PHONE_RATE}" if fmt == "l16" else "")
    return Response(audio, media_type=media_type, headers={"X-Guichet-Cache": "hit" if cached else "miss"})
