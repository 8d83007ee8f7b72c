"""The HTTP service: one ``Service`` per worker, its routes grouped by who calls them, French errors.

>>> app = create_app(lambda: Answerer.from_settings(settings), settings)  # doctest: +SKIP
>>> uvicorn.run(app)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.answer.pipeline import Answerer
from bot.settings import Settings
from bot.web.communes import Communes
from bot.web.limits import BodySizeLimit
from bot.web.routes import jambonz, operations, pages, speech, staff, staff_sets, syndicate, turns, voice
from bot.web.service import Refused, Service
from bot.web.staff.reindexing import SyncSchedule
from bot.web.workers import WorkerRoll

MALFORMED = {
    "/api/v1/turn": "La requête est mal formée : il faut un champ « text » contenant votre question.",
    "/api/v1/turn/stream": "La requête est mal formée : il faut un champ « text » contenant votre question.",
    "/api/v1/feedback": "Votre avis est mal formé : il faut session_id, turn_id et useful (vrai ou faux).",
    "/api/v1/voice/turn": "La requête du canal téléphonique est mal formée : il faut session_id et transcript.",
    "/speech/tts": "La requête de synthèse vocale est mal formée : il faut un texte en français (language fr-FR).",
}
HTTP_ERRORS_FR = {
    400: "La requête est mal formée : son contenu n'est pas du JSON valide.",
    404: "Cette adresse n'existe pas sur le service.",
    405: "Cette méthode n'est pas acceptée à cette adresse.",
    415: "Le contenu de la requête doit être du JSON.",
}
TOO_LONG = "Votre message est trop long. Merci de poser votre question en quelques phrases."


def app_from_environment() -> FastAPI:
    """The app of one worker process, configured from ``GUICHET_*`` (``guichet serve --workers N``): the communes
    registered in the deployment's database, else the one commune the settings name."""
    from bot.settings import load_settings
    from bot.state.communes import CommuneRegistry
    from bot.state.database import state_url

    settings = load_settings()
    peers = WorkerRoll.from_environment()
    registry = CommuneRegistry(state_url(settings.database_url, settings.staff_dir))
    registered = registry.enabled()
    if registered:
        return create_app(None, settings, peers, Communes.build(registered, settings, peers, registry=registry))
    return create_app(lambda: Answerer.from_settings(settings), settings, peers)


def create_app(
    load_answerer: Callable[[], Answerer] | None,
    settings: Settings | None = None,
    peers: WorkerRoll | None = None,
    communes: Communes | None = None,
) -> FastAPI:
    """Build the app; the models and indexes load in the background so /healthz answers at once. ``peers``: the
    other workers of the same service, when there are several (/readyz waits for all of them). ``communes``: the
    communes it serves when there are several (``load_answerer`` is then unused: each commune has its own)."""
    settings = settings or Settings()
    if communes is None:
        assert load_answerer is not None, "one commune's app needs its answerer"
        service = Service(load_answerer, settings, peers)
        services = [service]
    else:
        services = communes.all()
        service = services[0]  # the deployment's gate, limits and metrics are every commune's

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        loop, loading, schedules = asyncio.get_running_loop(), [], []
        for n, each in enumerate(services):
            each.feedback.purge()
            each.gaps.purge()
            loading.append(loop.run_in_executor(None, each.load))
            offset = settings.sync_every_hours * n / len(services)  # one commune's sync at a time, spread out
            schedule = SyncSchedule(staff.reindexing_of(each), settings.sync_every_hours, each.live_manifest, offset)
            schedules.append(schedule)
        if settings.sync_every_hours:
            for schedule in schedules:
                schedule.start()
        yield
        for schedule in schedules:
            schedule.stop()
        await asyncio.gather(*loading)

    app = FastAPI(
        title="Guichet",
        version="1",
        lifespan=lifespan,
        description="Assistant automatique des démarches de la mairie (IA).",
    )
    app.state.service = service
    app.state.communes = communes
    app.state.settings = settings  # the deployment's (a commune's own are its service's)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        on_reject=service.metrics.rejected.labels("too_large").inc,
        larger={"/staff/jeux": settings.staff_upload_max_bytes},
    )
    if settings.allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-Guichet-Session", "X-Guichet-Commune"],
            expose_headers=["Retry-After"],
        )
    _french_errors(app)
    app.include_router(turns.router)
    app.include_router(pages.router)
    app.include_router(operations.router)
    if settings.metrics_enabled:
        app.include_router(operations.metrics_router)
    app.include_router(voice.router)
    app.include_router(speech.router)
    app.include_router(staff.router)
    app.include_router(staff_sets.router)
    app.include_router(syndicate.router)
    app.include_router(jambonz.router)
    return app


def _french_errors(app: FastAPI) -> None:
    """Every error a client reads is ``{"error": "<French message>"}``; the jambonz webhooks keep their
    technical detail for the IT person."""

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return JSONResponse(status_code=exc.status, headers=headers, content={"error": exc.message})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        too_long = any(
            e.get("type") == "string_too_long" and tuple(e.get("loc", ()))[-1:] == ("text",) for e in exc.errors()
        )
        message = TOO_LONG if too_long else MALFORMED.get(request.url.path, "La requête est mal formée.")
        return JSONResponse(status_code=422, content={"error": message})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if request.url.path.startswith("/voice/jambonz"):
            return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail}, headers=exc.headers)
        message = HTTP_ERRORS_FR.get(exc.status_code, "La requête n'a pas pu être traitée.")
        return JSONResponse(status_code=exc.status_code, content={"error": message}, headers=exc.headers)
