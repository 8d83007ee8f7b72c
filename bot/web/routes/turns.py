"""The residents' turn endpoints: one answer as JSON, one streamed as Server-Sent Events, and feedback."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sse_starlette.sse import EventSourceResponse

from bot.web.schemas import FeedbackRequest, TurnRequest, TurnResponse
from bot.web.service import Admission, Admitted, Refused, service_of

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["turn"])


@router.post("/turn", response_model=TurnResponse)
async def turn(body: TurnRequest, request: Request, admission: Admission = Admitted):
    """Answer one message; the reply carries the citations and the turn's outcome."""
    service = service_of(request)
    session_id, session = service.sessions.open(body.session_id)
    turn_id = uuid.uuid4().hex
    with admission:  # the model call is CPU-bound and blocking: keep it off the event loop
        result = await run_in_threadpool(service.answerer.answer, body.text, session.history(), body.channel)
    return service.finished(body.channel, result, session_id, session, turn_id)


@router.post("/turn/stream")
async def turn_stream(body: TurnRequest, request: Request, admission: Admission = Admitted):
    """Server-Sent Events: ``meta`` (ids), ``delta`` (draft text as written), then ``final`` (the answer object).

    A draft sentence holding a figure or a contact is not streamed: it arrives checked, in ``final``, whose
    ``answer`` always replaces the draft.
    """
    service = service_of(request)
    session_id, session = service.sessions.open(body.session_id)
    turn_id = uuid.uuid4().hex
    loop, deltas = asyncio.get_running_loop(), asyncio.Queue()

    def on_draft(text: str) -> None:  # called from the model's thread
        loop.call_soon_threadsafe(deltas.put_nowait, text)

    answering = asyncio.ensure_future(
        run_in_threadpool(service.answerer.answer, body.text, session.history(), body.channel, on_draft)
    )
    # The gate is left when the model is done, even if the client went away meanwhile.
    answering.add_done_callback(lambda _: admission.release())

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
            final = service.finished(body.channel, answering.result(), session_id, session, turn_id)
        except Exception:
            log.exception("turn failed")
            yield {"event": "error", "data": json.dumps({"error": "Une erreur technique est survenue."})}
            return
        yield {"event": "final", "data": json.dumps(final, ensure_ascii=False)}

    return EventSourceResponse(events(), ping=15)


@router.post("/feedback", status_code=201)
async def give_feedback(body: FeedbackRequest, request: Request):
    """Useful or not, with a reason from a fixed list; stored with the turn's outcome and sources only."""
    service = service_of(request)
    if service.limiter.wait_seconds("feedback:" + service.client_key(request)):
        service.metrics.rejected.labels("rate_limited").inc()
        raise Refused(429, "Merci, votre avis a déjà été pris en compte.", 10)
    recorded = service.sessions.find_turn(body.session_id, body.turn_id)
    await run_in_threadpool(
        service.feedback.add,
        body.useful,
        body.reason,
        recorded.outcome if recorded else None,
        recorded.sources if recorded else [],
        recorded.prompt_version if recorded else "",
        recorded.question if recorded else "",  # masked by the input guard; kept only for "wrong"/"incomplete"
    )
    service.metrics.feedback.labels(str(body.useful).lower()).inc()
    return {"message": "Merci pour votre avis."}
