"""What the town's IT person watches: liveness, readiness (with the reason when not ready), Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from bot.web.service import services_of

router = APIRouter()
metrics_router = APIRouter()  # included only when GUICHET_METRICS_ENABLED


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request):
    """Ready once every commune has loaded. With several communes, one that could not load (its index broken)
    does not keep the others from serving: ready once the rest have, its reason under ``not_serving``."""
    services = services_of(request)
    loading = [s for s in services if s.answerer is None and s.error is None]
    failed = {s.commune: s.error for s in services if s.error is not None and s.answerer is None}
    if loading or len(failed) == len(services):
        service = (loading or services)[0]
        content = {"status": "not ready", "reason": service.error or "loading models and index"}
        content |= {"commune": service.commune} if service.commune else {}
        return JSONResponse(status_code=503, content=content)
    peers = services[0].peers
    if peers and (waiting := peers.loading()):
        reason = f"{waiting} of {peers.expected} worker processes still loading models and index"
        return JSONResponse(status_code=503, content={"status": "not ready", "reason": reason})
    if len(services) == 1:
        return {"status": "ready", "index": services[0].answerer.info["index"].get("corpus_hash")}
    hashes = {s.commune: s.answerer.info["index"].get("corpus_hash") for s in services if s.answerer}
    return {"status": "ready", "communes": hashes} | ({"not_serving": failed} if failed else {})


@metrics_router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    # every commune's service holds the deployment's one set of metrics
    return Response(services_of(request)[0].metrics.exposition(), media_type="text/plain; version=0.0.4")
