"""QuestionRouter: questions the documents must not answer are recognised before retrieval.

Two layers. First, a few hand-written patterns that are precise by construction (``config/routes.yaml``): the
emergency numbers' own triggers, explicit instructions to the AI, and a message made only of a greeting. Then
the meaning: a classifier over the question's embedding (``bot.answer.route_classifier``) ends the turn only when it is
confident (``routing.min_probability`` in ``config/thresholds.yaml``); when unsure, the question goes to the
documents. Each route ends the turn with its own outcome and message.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.answer.outcomes import EndTurn, Outcome
from bot.answer.route_classifier import RouteClassifier
from bot.answer.textmatch import without_personal_clauses
from bot.answer.turn import Turn
from bot.errors import ConfigError
from bot.settings import load_yaml
from bot.text import fold


def load_patterns(path: Path) -> tuple[list[tuple[Outcome, re.Pattern[str]]], str]:
    """The precise patterns of ``routes.yaml``, in order, and the file's version."""
    data = load_yaml(path)
    routes = []
    for n, route in enumerate(data.get("routes", []), 1):
        try:
            outcome = Outcome(route["outcome"])
            pattern = "|".join(f"(?:{p})" for p in route["patterns"])
            whole = bool(route.get("whole_message"))
            routes.append((outcome, re.compile(f"^(?:{pattern})$" if whole else pattern)))
        except (KeyError, ValueError, re.error) as exc:
            raise ConfigError(f"{path}: route {n} is invalid ({exc}).") from None
    return routes, str(data.get("version", ""))


class QuestionRouter:
    """Ends the turn with the first precise pattern that matches, else with the classifier's confident route."""

    def __init__(
        self,
        patterns: list[tuple[Outcome, re.Pattern[str]]],
        classifier: RouteClassifier | None = None,
        min_probability: float = 1.0,
        version: str = "",
    ):
        self.patterns, self.classifier, self.min_probability = patterns, classifier, min_probability
        self.version = version

    def run(self, turn: Turn) -> None:
        question = fold(turn.question)
        for outcome, pattern in self.patterns:
            if pattern.search(question):
                turn.trace["route"] = {"label": outcome.value, "by": "pattern"}
                raise EndTurn(outcome, "routed by a precise pattern")
        if self.classifier is None:
            return
        # What the resident asks decides, not what they told about themselves: "Rappelez-moi au [numéro de
        # téléphone]. Quels jours pour une carte d'identité ?" is a question about opening days, not about a file.
        guess = self.classifier.guess(without_personal_clauses(turn.question))
        turn.trace["route"] = {
            "label": guess.label,
            "probability": guess.probability,
            "town_probability": guess.town_probability,
            "by": "meaning",
        }
        if guess.outcome is not None and guess.probability >= self.min_probability:
            raise EndTurn(guess.outcome, f"routed by meaning (p={guess.probability:.2f})")
