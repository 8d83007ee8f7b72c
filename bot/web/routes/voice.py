"""The phone channel for any voice gateway (speech-to-text already done); jambonz has its own webhooks."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from bot.web.schemas import VoiceTurnRequest, VoiceTurnResponse
from bot.web.service import Admission, AdmittedCall, service_of

router = APIRouter(prefix="/api/v1/voice", tags=["voice"])


@router.post("/turn", response_model=VoiceTurnResponse)
async def voice_turn(body: VoiceTurnRequest, request: Request, admission: Admission = AdmittedCall):
    """One caller turn; the gateway authenticates with the phone channel's secret (Bearer)."""
    dialog = service_of(request).dialog
    with admission:
        reply = await run_in_threadpool(dialog.handle, body.session_id, body.transcript, body.confidence, body.dtmf)
    return asdict(reply)
