"""What the town's IT person watches: liveness, readiness (with the reason when not ready), Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from bot.web.service import service_of

router = APIRouter()
metrics_router = APIRouter()  # included only when GUICHET_METRICS_ENABLED


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request):
    service = service_of(request)
    if service.answerer is None:
        reason = service.error or "loading models and index"
        return JSONResponse(status_code=503, content={"status": "not ready", "reason": reason})
    if service.peers and (loading := service.peers.loading()):
        reason = f"{loading} of {service.peers.expected} worker processes still loading models and index"
        return JSONResponse(status_code=503, content={"status": "not ready", "reason": reason})
    return {"status": "ready", "index": service.answerer.info["index"].get("corpus_hash")}


@metrics_router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    return Response(service_of(request).metrics.exposition(), media_type="text/plain; version=0.0.4")
