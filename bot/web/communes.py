"""Several communes in one service: which commune a request is for, and each commune's own ``Service``.

A request names its commune by its ``X-Guichet-Commune`` header (the widget sends its ``data-commune``), else by
the number a caller dialled (the jambonz webhooks), else by its host name. A request that names none, or a commune
that is not served (unknown, disabled), is refused with a French message: never answered with another commune's
documents. Each commune's ``Service`` has its own answerer (its index and town file), sessions, feedback, questions
left unanswered and staff database; they share the models (``bot.answer.pipeline.SharedModels``) and the server's
gate, limits and metrics (``bot.web.service.Shared``).

The registry is the truth: a worker stops serving a commune disabled there at once when the change is made through
it (the syndicate's pages), and within ``REGISTRY_CHECK_SECONDS`` otherwise (another worker, the command line). A
commune a worker did not load at start (added, or enabled, since) is served after ``guichet serve`` restarts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from starlette.requests import HTTPConnection

from bot.answer.pipeline import Answerer, SharedModels
from bot.engines.index import live_generation
from bot.errors import explained
from bot.settings import Settings
from bot.state.communes import Commune, CommuneError, CommuneRegistry, normal_host, normal_number
from bot.web.service import Refused, Service, Shared
from bot.web.workers import WorkerRoll

log = logging.getLogger(__name__)
HEADER = "x-guichet-commune"
UNKNOWN = "Cette adresse ne correspond à aucune commune servie par cet assistant."
REGISTRY_CHECK_SECONDS = 5.0  # how often a worker reads which of its communes the registry still enables


def commune_settings(settings: Settings, folder: Path) -> Settings:
    """A commune's settings: its town file, index, staff and feedback folders, validated answers and sources in its
    folder, its own messages if it has them; the models, thresholds and limits are the deployment's. Its staff
    state is the SQLite file of its staff folder (``database_url`` empty)."""
    messages = folder / "messages.fr.yaml"
    return settings.model_copy(
        update={
            "town_file": folder / "town.yaml",  # the layout of a commune's folder: here only
            "index_dir": folder / "index",
            "staff_dir": folder / "staff",
            "feedback_dir": folder / "feedback",
            "validated_answers_file": folder / "validated-answers.jsonl",
            "sources_file": folder / "sources.yaml",
            "sources_dir": folder / "sources",
            "messages_file": messages if messages.is_file() else settings.messages_file,
            "database_url": "",
        }
    )


def check_folder(settings: Settings, folder: Path) -> None:
    """What serving a commune needs in its folder: the town file, and an index built by ``guichet ingest``; a
    ``CommuneError`` in French says what is missing and how to make it."""
    own = commune_settings(settings, folder)
    if not own.town_file.is_file():
        raise CommuneError(f"Le dossier {folder} n'a pas de fichier {own.town_file.name} (la fiche de la commune).")
    if live_generation(own.index_dir) is None:
        raise CommuneError(
            f"Le dossier {folder} n'a pas d'index : lancez « guichet ingest <documents> --index {own.index_dir} »."
        )


class Communes:
    """The communes an app serves, each with its ``Service``; ``of(request)`` is the one a request is for. With the
    ``registry`` they came from, a commune disabled there since is no longer served (``follow``)."""

    def __init__(self, served: list[tuple[Commune, Service]], registry: CommuneRegistry | None = None):
        self.services = {commune.slug: service for commune, service in served}
        self.by_host = {host: commune.slug for commune, _ in served for host in commune.hosts}
        self.by_number = {number: commune.slug for commune, _ in served for number in commune.numbers}
        self.stopped: frozenset[str] = frozenset()  # loaded here, disabled in the registry since
        self.registry = registry
        self._checked, self._following = time.monotonic(), threading.Lock()

    @classmethod
    def build(
        cls,
        communes: list[Commune],
        settings: Settings,
        peers: WorkerRoll | None = None,
        load_answerer: Callable[[Settings], Answerer] | None = None,
        registry: CommuneRegistry | None = None,
    ) -> Communes:
        """A ``Service`` per enabled commune; their answerers share one set of models (``load_answerer`` builds a
        commune's answerer from its settings: by default over ``SharedModels``). ``registry``: where ``communes``
        were read, followed while serving."""
        if load_answerer is None:
            load_answerer = SharedModels(settings).answerer
        shared = Shared.of(settings)
        served = []
        for commune in (c for c in communes if c.enabled):
            own = commune_settings(settings, commune.folder)
            service = Service(lambda own=own: load_answerer(own), own, peers, shared, commune.slug)
            served.append((commune, service))
        shared.loading = len(served)
        return cls(served, registry)

    def all(self) -> list[Service]:
        """Every commune this worker loaded, served or stopped since (readiness, metrics, the speech gateway)."""
        return list(self.services.values())

    def of(self, request: HTTPConnection, called: str | None = None) -> Service:
        """The commune's service, or ``Refused`` (404) when the request names no commune served here."""
        self._follow_when_stale()
        named = request.headers.get(HEADER, "").strip().lower()
        number = self.by_number.get(normal_number(called)) if called else None
        slug = named or number or self.by_host.get(normal_host(request.headers.get("host", "")))
        if slug is None or slug not in self.services or slug in self.stopped:
            raise Refused(404, UNKNOWN)
        return self.services[slug]

    def follow(self, registry: CommuneRegistry) -> list[Commune]:
        """Serve, of the communes loaded here, those the registry enables now; the others are refused from now on.
        The registered communes, as read. One reading at a time: an older one never undoes a newer one."""
        with self._following:
            return self._read(registry)

    def _read(self, registry: CommuneRegistry) -> list[Commune]:
        registered = registry.all()
        enabled = {c.slug for c in registered if c.enabled}
        self.stopped = frozenset(slug for slug in self.services if slug not in enabled)
        return registered

    def state(self, slug: str) -> str:
        """What this worker does with a commune: ``serving``, ``loading``, ``failed`` (``services[slug].error``
        says why), ``stopped`` (disabled since it loaded) or ``absent`` (not loaded at start)."""
        service = self.services.get(slug)
        if service is None:
            return "absent"
        if slug in self.stopped:
            return "stopped"
        if service.answerer is not None:
            return "serving"
        return "loading" if service.error is None else "failed"

    def _follow_when_stale(self) -> None:
        """Read the registry again, before answering, when it was last read more than ``REGISTRY_CHECK_SECONDS``
        ago (a few milliseconds, at most that often): a worker idle since a commune was disabled elsewhere refuses
        its first request already. One reader at a time (the others answer from the last reading); a registry
        that cannot be read leaves the communes as they were (logged)."""
        if self.registry is None or time.monotonic() - self._checked < REGISTRY_CHECK_SECONDS:
            return
        if not self._following.acquire(blocking=False):  # another request is reading it now
            return
        try:
            self._read(self.registry)
        except Exception as exc:  # noqa: BLE001 - an unreachable database keeps serving what was served
            log.warning("commune registry not read: %s", explained(exc))
        finally:
            self._checked = time.monotonic()
            self._following.release()
