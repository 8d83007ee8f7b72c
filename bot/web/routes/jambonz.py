"""The jambonz webhooks: a call opens, a caller's words (or keypad digits) come back, the call ends.

A caller's turn goes through the service's door like every channel's (``Service.admit``: capacity gate and the
call's own rate limit; ``Service.observe``: metrics and the questions left unanswered). A caller is never hung up on
because the server is busy or starting: they hear why and are listened to again.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from bot.phone.jambonz import gather, heard, verbs_for, verify
from bot.web.service import Refused, Service, service_of, services_of

router = APIRouter(prefix="/voice/jambonz", tags=["voice"])


async def signed_payload(request: Request) -> dict:
    """The webhook's JSON body, once its ``Jambonz-Signature`` is checked (errors are for the IT person)."""
    secrets = services_of(request)[0].settings.voice_secrets  # the gateway's secret: one for the deployment
    if not secrets:
        raise HTTPException(503, "Voice channel disabled: set GUICHET_VOICE_WEBHOOK_SECRET.")
    body = await request.body()
    if not verify(body, request.headers.get("Jambonz-Signature"), secrets):
        raise HTTPException(401, "Invalid or missing Jambonz-Signature.")
    try:
        payload = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPException(400, "Body must be JSON.") from None
    if not isinstance(payload, dict):
        raise HTTPException(400, "Body must be a JSON object.")
    return payload


def commune_called(request: Request, payload: dict) -> Service:
    """The service of the commune whose number the caller dialled (jambonz's ``to``)."""
    return service_of(request, str(payload.get("to", "")))


def wait_text(service: Service) -> str | None:
    """What the gateway says while an answer is slow (None while the service starts: nothing to say it with)."""
    return service.dialog.messages.text("voice_wait") if service.dialog else None


def told_and_listened_to_again(service: Service, refused: Refused) -> list[dict]:
    """A refused turn on the phone: its French message said, then the caller is listened to again."""
    return [gather(refused.message, wait_text(service))]


@router.post("/call")
async def call(request: Request) -> list[dict]:
    payload = await signed_payload(request)
    service = commune_called(request, payload)
    if service.dialog is None:
        return told_and_listened_to_again(service, service.not_serving())
    reply = service.dialog.welcome(str(payload.get("call_sid", "")))
    return [*service.call_opening, *verbs_for(reply, wait_text(service))]


@router.post("/gather")
async def gathered(request: Request) -> list[dict]:
    payload = await signed_payload(request)
    service = commune_called(request, payload)
    call_id, dialog = str(payload.get("call_sid", "")), service.dialog
    try:
        if dialog is None:
            raise service.not_serving()
        # the same key as the generic voice turn's; words heard while the service is full wait for a place
        admission = await run_in_threadpool(service.admit, "call:" + call_id, service.settings.voice_queue_seconds)
    except Refused as refused:
        return told_and_listened_to_again(service, refused)
    transcript, confidence, digits = heard(payload)
    with admission:
        reply = await run_in_threadpool(dialog.handle, call_id, transcript, confidence, digits)
    if reply.action == "end":
        dialog.end(call_id)
    return verbs_for(reply, wait_text(service))


@router.post("/status")
async def status(request: Request) -> dict:
    payload = await signed_payload(request)
    dialog = commune_called(request, payload).dialog
    if payload.get("call_status") in ("completed", "failed", "no-answer", "busy") and dialog:
        dialog.end(str(payload.get("call_sid", "")))
    return {}
