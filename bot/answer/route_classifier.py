"""Which route a question takes, decided from its meaning: a classifier over the question's embedding.

Trained at start-up on labelled examples kept as data (``config/route-examples.fr.yaml``), with the embedder
that already runs on every question. The examples' vectors are cached on disk, keyed on the examples file and
the embedder, so a restart costs nothing. A question is routed away from the documents only when the classifier
is confident; when unsure it is a town question, and the documents decide.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from bot.answer.outcomes import Outcome
from bot.engines.embedder import Embedder
from bot.errors import ConfigError
from bot.settings import load_yaml

log = logging.getLogger(__name__)

TOWN = "town"  # the default label: a question for the documents


@dataclass(frozen=True)
class RouteGuess:
    """The most likely label of a question and the classifier's probability for it."""

    label: str
    probability: float
    town_probability: float = 0.0  # how sure the classifier is that the documents should answer

    @property
    def outcome(self) -> Outcome | None:
        """The outcome that ends the turn, or None for a town question."""
        return None if self.label == TOWN else Outcome(self.label)


class RouteClassifier:
    """Multinomial logistic regression over question embeddings (scikit-learn), with a cache of example vectors.

    >>> from bot.engines.embedder import FakeEmbedder
    >>> examples = {"town": ["prix du passeport", "horaires de la mairie"], "smalltalk_greeting": ["bonjour", "merci"]}
    >>> RouteClassifier.train(examples, FakeEmbedder()).guess("bonjour").label
    'smalltalk_greeting'
    """

    def __init__(self, model: LogisticRegression, embedder: Embedder, version: str = ""):
        self.model, self.embedder, self.version = model, embedder, version

    @classmethod
    def train(
        cls, examples: dict[str, list[str]], embedder: Embedder, vectors: np.ndarray | None = None, version: str = ""
    ) -> RouteClassifier:
        labels = [label for label, texts in examples.items() for _ in texts]
        texts = [text for items in examples.values() for text in items]
        if vectors is None:
            vectors = embedder.embed_for_classification(texts)
        # Balanced classes: "town" has the most examples, yet a rare route must not be drowned by it.
        model = LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000)
        model.fit(vectors, labels)
        return cls(model, embedder, version)

    @classmethod
    def load(cls, examples_file: Path, embedder: Embedder, cache_dir: Path | None = None) -> RouteClassifier:
        """Train on ``examples_file``, reusing the cached example vectors when file and embedder are unchanged."""
        data = load_yaml(examples_file)
        examples = {str(label): list(texts or []) for label, texts in (data.get("labels") or {}).items()}
        not_text = [str(t) for texts in examples.values() for t in texts if not isinstance(t, str)]
        if not_text:  # "- Note : texte" unquoted is a YAML mapping, and would be learnt as "{'Note': 'texte'}"
            raise ConfigError(f"{examples_file}: put these examples in quotes, YAML reads them as data: {not_text[0]}")
        unknown = [label for label in examples if label != TOWN and label not in Outcome.__members__.values()]
        if TOWN not in examples or unknown or sum(bool(t) for t in examples.values()) < 2:
            raise ConfigError(
                f"{examples_file}: 'labels' needs '{TOWN}' and outcome names with examples"
                + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                + "."
            )
        texts = [text for items in examples.values() for text in items]
        key = hashlib.sha256("\n".join([embedder.name, *texts]).encode()).hexdigest()[:16]
        cached = cache_dir / f"route-examples-{key}.npy" if cache_dir else None
        vectors = None
        if cached and cached.exists():
            try:
                vectors = np.load(cached, allow_pickle=False)
            except (OSError, ValueError) as exc:  # damaged: computed again below
                log.warning("route examples' cache %s unreadable (%s): computing it again", cached, exc)
            if vectors is not None and vectors.shape != (len(texts), embedder.dimension):
                vectors = None
        if vectors is None:
            vectors = embedder.embed_for_classification(texts)
            if cached:
                _save_atomically(cached, vectors)
        return cls.train(examples, embedder, vectors, str(data.get("version", "")))

    def guess(self, question: str) -> RouteGuess:
        """The most likely label of ``question`` with its probability."""
        vector = self.embedder.embed_for_classification([question])
        probabilities = self.model.predict_proba(vector)[0]
        best = int(np.argmax(probabilities))
        town = float(probabilities[list(self.model.classes_).index(TOWN)])
        return RouteGuess(str(self.model.classes_[best]), round(float(probabilities[best]), 4), round(town, 4))


class FakeRouteClassifier:
    """Routes by substrings given in advance, sure of itself; a town question otherwise. For unit tests only.

    >>> FakeRouteClassifier({"météo": "refused_out_of_scope"}).guess("La météo demain ?").label
    'refused_out_of_scope'
    """

    version = "fake"

    def __init__(self, routes: dict[str, str]):
        self.routes = routes

    def guess(self, question: str) -> RouteGuess:
        folded = question.lower()
        label = next((label for words, label in self.routes.items() if words in folded), TOWN)
        return RouteGuess(label, 1.0)


def _save_atomically(path: Path, vectors: np.ndarray) -> None:
    """Write then rename: workers starting together never read each other's half-written file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as out:
            np.save(out, vectors, allow_pickle=False)
        os.replace(out.name, path)
    except OSError as exc:  # a read-only deployment just computes them again next time
        log.warning("route examples not cached at %s: %s", path, exc)
