"""The town's services, and which one a resident is sent to when the documents cannot answer.

A reply that ends without an answer (no source, a decision on the resident's file, another person's data) says
where to turn. The right desk is the one whose topics (``services`` in ``config/town.yaml``) are closest in meaning
to the question: the question's search vector against each service's topics, embedded once at start-up. The
reception, listed first, takes what no service is clearly about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.engines.embedder import Embedder
from bot.errors import ConfigError


@dataclass(frozen=True)
class Service:
    """One desk of the town: its key, the contact a message names, and what it deals with."""

    key: str
    contact: str
    topics: str


class Services:
    """Chooses the service for a question.

    >>> from bot.engines.embedder import FakeEmbedder
    >>> services = Services.from_town({"services": {
    ...     "accueil": {"contact": "l'accueil", "topics": "état civil passeport"},
    ...     "urbanisme": {"contact": "le service urbanisme", "topics": "permis de construire clôture"}}},
    ...     FakeEmbedder(), min_similarity=0.2)
    >>> services.for_question("permis de construire pour une clôture").key
    'urbanisme'
    >>> services.for_question("bonjour").key
    'accueil'
    """

    def __init__(self, services: list[Service], embedder: Embedder | None, min_similarity: float):
        if not services:
            raise ConfigError("config/town.yaml has no services: list at least the reception (services: accueil).")
        self.services, self.embedder, self.min_similarity = services, embedder, min_similarity
        self._vectors = (
            embedder.embed_documents([f"title: {s.key} | text: {s.topics}" for s in services])
            if embedder is not None and len(services) > 1
            else None
        )

    @classmethod
    def from_town(cls, town: dict[str, Any], embedder: Embedder | None, min_similarity: float = 0.3) -> Services:
        """The services of the town file; a town without any has its reception as its one service."""
        declared = town.get("services") or {}
        if not isinstance(declared, dict):
            raise ConfigError("config/town.yaml: services must map a key to {contact, topics}.")
        services = []
        for key, entry in declared.items():
            if not isinstance(entry, dict) or not entry.get("contact"):
                raise ConfigError(f"config/town.yaml: service '{key}' needs a contact.")
            services.append(Service(str(key), str(entry["contact"]).strip(), str(entry.get("topics", "")).strip()))
        if not services and town.get("reception"):
            services = [Service("accueil", str(town["reception"]), "")]
        return cls(services, embedder, min_similarity)

    @property
    def reception(self) -> Service:
        return self.services[0]

    def for_question(self, question: str, vector: np.ndarray | None = None) -> Service:
        """The service whose topics are closest to ``question`` (its search vector if already computed), or the
        reception when none is at least ``min_similarity`` close."""
        if self._vectors is None or self.embedder is None or not question.strip():
            return self.reception
        vector = vector if vector is not None else self.embedder.embed_query(question)
        similarities = self._vectors @ vector
        best = int(np.argmax(similarities))
        return self.services[best] if float(similarities[best]) >= self.min_similarity else self.reception
