"""Several communes in one service: which commune a request is for, and each commune's own ``Service``.

A request names its commune by its ``X-Guichet-Commune`` header (the widget sends its ``data-commune``), else by
the number a caller dialled (the jambonz webhooks), else by its host name. A request that names none, or a commune
that is not served (unknown, disabled), is refused with a French message: never answered with another commune's
documents. Each commune's ``Service`` has its own answerer (its index and town file), sessions, feedback, questions
left unanswered and staff database; they share the models (``bot.answer.pipeline.SharedModels``) and the server's
gate, limits and metrics (``bot.web.service.Shared``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.requests import HTTPConnection

from bot.answer.pipeline import Answerer, SharedModels
from bot.settings import Settings
from bot.state.communes import Commune, normal_host, normal_number
from bot.web.service import Refused, Service, Shared
from bot.web.workers import WorkerRoll

HEADER = "x-guichet-commune"
UNKNOWN = "Cette adresse ne correspond à aucune commune servie par cet assistant."


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


class Communes:
    """The communes an app serves, each with its ``Service``; ``of(request)`` is the one a request is for."""

    def __init__(self, served: list[tuple[Commune, Service]]):
        self.services = {commune.slug: service for commune, service in served}
        self.by_host = {host: commune.slug for commune, _ in served for host in commune.hosts}
        self.by_number = {number: commune.slug for commune, _ in served for number in commune.numbers}

    @classmethod
    def build(
        cls,
        communes: list[Commune],
        settings: Settings,
        peers: WorkerRoll | None = None,
        load_answerer: Callable[[Settings], Answerer] | None = None,
    ) -> Communes:
        """A ``Service`` per enabled commune; their answerers share one set of models (``load_answerer`` builds a
        commune's answerer from its settings: by default over ``SharedModels``)."""
        if load_answerer is None:
            load_answerer = SharedModels(settings).answerer
        shared = Shared.of(settings)
        served = []
        for commune in (c for c in communes if c.enabled):
            own = commune_settings(settings, commune.folder)
            service = Service(lambda own=own: load_answerer(own), own, peers, shared, commune.slug)
            served.append((commune, service))
        shared.loading = len(served)
        return cls(served)

    def all(self) -> list[Service]:
        return list(self.services.values())

    def of(self, request: HTTPConnection, called: str | None = None) -> Service:
        """The commune's service, or ``Refused`` (404) when the request names no commune served here."""
        named = request.headers.get(HEADER, "").strip().lower()
        number = self.by_number.get(normal_number(called)) if called else None
        slug = named or number or self.by_host.get(normal_host(request.headers.get("host", "")))
        if slug is None or slug not in self.services:
            raise Refused(404, UNKNOWN)
        return self.services[slug]
