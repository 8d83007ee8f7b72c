"""Guichet as the voice gateway's speech vendor: speech-to-text and text-to-speech on this server, so no third
party hears a call.

``WebSocket /speech/stt`` follows jambonz's custom STT API: the upgrade carries ``Authorization: Bearer
<GUICHET_SPEECH_API_KEY>`` (refused without it), then a ``start`` message, binary LINEAR16 frames and ``stop``;
Guichet answers ``transcription`` messages (interim ones if asked, a final one when the caller stops speaking)
or an ``error`` before it closes.

``POST /speech/tts`` follows jambonz's custom TTS API: same key, ``{language, voice, type: text|ssml, text}`` in,
8 kHz audio out: MP3 by default, WAV or L16 when the ``Accept`` header asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import numpy as np
from fastapi import APIRouter, Request, Response, WebSocket
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from bot.engines.speech import CONTENT_TYPES, PHONE_RATE, Format, SynthesisError
from bot.phone.listening import Due, Listening, ProtocolError, error, expect_stop, parse_start, transcription
from bot.web.schemas import SynthesisRequest
from bot.web.service import Refused, Service, gateway_service

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
    service = gateway_service(request)
    service.check_speech_client(request)
    if service.speech is None:
        raise service.not_serving()
    fmt = wanted_format(request.headers.get("accept", ""))
    try:
        audio, cached = await run_in_threadpool(service.speech.speak, body.text, body.voice, body.type == "ssml", fmt)
    except SynthesisError as exc:
        log.warning("speech synthesis failed: %s", exc)  # the engine's message; never the text spoken
        raise Refused(500, "La synthèse vocale a échoué pour ce texte.") from None
    media_type = CONTENT_TYPES[fmt] + (f";rate={PHONE_RATE}" if fmt == "l16" else "")
    return Response(audio, media_type=media_type, headers={"X-Guichet-Cache": "hit" if cached else "miss"})


POLICY_VIOLATION, TRY_AGAIN_LATER = 1008, 1013  # WebSocket close codes


@router.websocket("/stt")
async def recognize(websocket: WebSocket) -> None:
    service = gateway_service(websocket)
    try:
        service.check_speech_client(websocket)
    except Refused:
        await websocket.close(code=POLICY_VIOLATION)  # before accepting: the upgrade itself is refused (403)
        return
    await websocket.accept()
    if service.recognizer is None:
        await _fail(websocket, service.recognizer_error, TRY_AGAIN_LATER)
        return
    if not service.listeners.try_enter():
        service.metrics.speech_errors.labels("over_capacity").inc()
        message = f"Capacité atteinte : {service.listeners.capacity} appels sont déjà en reconnaissance vocale."
        await _fail(websocket, message, TRY_AGAIN_LATER)
        return
    interims: set[asyncio.Task] = set()
    service.metrics.listening.set(service.listeners.in_flight)
    try:
        await _listen(websocket, service, interims)
    except WebSocketDisconnect:
        service.metrics.speech_errors.labels("dropped").inc()  # hung up mid-sentence: its audio goes with it
    finally:
        for task in interims:
            task.cancel()
        service.listeners.leave()
        service.metrics.listening.set(service.listeners.in_flight)


async def _listen(websocket: WebSocket, service: Service, interims: set[asyncio.Task]) -> None:
    """One session: ``start``, audio frames until ``stop``; a final transcript each time the caller stops."""
    limits, listening = service.listening_limits, None
    while True:
        try:
            message = await asyncio.wait_for(websocket.receive(), limits.idle_seconds)
        except TimeoutError:
            service.metrics.speech_errors.labels("idle").inc()
            await _fail(websocket, f"Aucun message depuis {limits.idle_seconds:.0f} s : session fermée.")
            return
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        try:
            if message.get("text") is not None:
                if listening is None:
                    start = parse_start(message["text"])
                    listening = Listening(start, service.vocabulary, limits, service.end_of_speech)
                    continue
                expect_stop(message["text"])
                await _final(websocket, service, listening, listening.take())
                await websocket.close()
                return
            if listening is None:
                raise ProtocolError("Audio reçu avant le message « start ».")
            due = listening.hear(message.get("bytes") or b"")
        except ProtocolError as exc:
            service.metrics.speech_errors.labels("protocol").inc()
            await _fail(websocket, str(exc))
            return
        if due is Due.FINAL:
            await _final(websocket, service, listening, listening.take())
        elif due is Due.INTERIM and not service.recognizer.busy and not interims:
            task = asyncio.create_task(_interim(websocket, service, listening, listening.audio()))
            interims.add(task)
            task.add_done_callback(interims.discard)


async def _final(websocket: WebSocket, service: Service, listening: Listening, audio: np.ndarray | None) -> None:
    if audio is None:
        return  # nobody spoke: jambonz's own timeout decides what a silence means
    began = time.monotonic()
    heard = await run_in_threadpool(service.recognizer.transcribe, audio, listening.vocabulary)
    service.metrics.recognition_seconds.observe(time.monotonic() - began)
    service.metrics.transcripts.labels("final").inc()
    await websocket.send_json(transcription(heard.text, heard.confidence, True, listening.start.language))


async def _interim(websocket: WebSocket, service: Service, listening: Listening, audio: np.ndarray) -> None:
    """A transcript of the utterance so far, dropped if the utterance ended before it was ready."""
    utterance = listening.utterance
    heard = await run_in_threadpool(service.recognizer.transcribe, audio, listening.vocabulary)
    if listening.utterance is utterance and heard.text:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the session closed meanwhile
            await websocket.send_json(transcription(heard.text, heard.confidence, False, listening.start.language))
            service.metrics.transcripts.labels("interim").inc()


async def _fail(websocket: WebSocket, message: str, code: int = POLICY_VIOLATION) -> None:
    await websocket.send_json(error(message))
    await websocket.close(code=code)
