"""QuestionRouter: questions the documents must not answer are recognised before retrieval.

Emergencies, prompt injection, abuse, other people's data, individual decisions, out-of-scope topics and
greetings each end the turn with their own outcome and message (``config/routes.yaml``).
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.errors import ConfigError
from bot.outcomes import EndTurn, Outcome
from bot.settings import load_yaml
from bot.textmatch import fold
from bot.turn import Turn


class QuestionRouter:
    """Ends the turn with the first route whose pattern matches the folded question."""

    def __init__(self, routes: list[tuple[Outcome, re.Pattern, bool]], version: str = ""):
        self.routes, self.version = routes, version

    @classmethod
    def load(cls, path: Path) -> QuestionRouter:
        data = load_yaml(path)
        routes = []
        for n, route in enumerate(data.get("routes", []), 1):
            try:
                outcome = Outcome(route["outcome"])
                pattern = "|".join(f"(?:{p})" for p in route["patterns"])
                whole = bool(route.get("whole_message"))
                routes.append((outcome, re.compile(f"^(?:{pattern})$" if whole else pattern), whole))
            except (KeyError, ValueError, re.error) as exc:
                raise ConfigError(f"{path}: route {n} is invalid ({exc}).") from None
        return cls(routes, str(data.get("version", "")))

    def run(self, turn: Turn) -> None:
        question = fold(turn.question)
        for outcome, pattern, _ in self.routes:
            if pattern.search(question):
                turn.metrics["route"] = outcome.value
                raise EndTurn(outcome, "routed before retrieval")
