"""Every way a turn can end, named ``<category>_<reason>``; the French messages live in a data file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from bot.settings import load_yaml


class Outcome(StrEnum):
    """Terminal states of a turn; the API, logs and evaluation reports all speak these names."""

    ANSWERED = "answered"
    ANSWERED_FROM_QUOTE = "answered_from_quote"  # model text failed verification; official sentence shown
    UNANSWERABLE_NO_SOURCES = "unanswerable_no_sources"
    REFUSED_EMPTY_QUESTION = "refused_empty_question"
    REFUSED_TOO_LONG = "refused_too_long"
    REFUSED_OUT_OF_SCOPE = "refused_out_of_scope"
    REFUSED_PERSONAL_DATA = "refused_personal_data"  # about another person
    REFUSED_ABUSIVE = "refused_abusive"
    GUARDRAIL_INJECTION = "guardrail_injection"
    HANDOFF_INDIVIDUAL_DECISION = "handoff_individual_decision"
    HANDOFF_EMERGENCY = "handoff_emergency"
    SMALLTALK_GREETING = "smalltalk_greeting"
    ERROR_LLM = "error_llm"


# The outcomes that answer: the model's words, or the official sentences the verifier found (compared with the
# outcome as a string too: ``"answered" in ANSWERS``).
ANSWERS = frozenset({Outcome.ANSWERED, Outcome.ANSWERED_FROM_QUOTE})


# Not outcomes: said beside an answer (personal data masked in the question, sources all old).
NOTICES = ("notice_redacted", "notice_old_sources")


class EndTurn(Exception):  # noqa: N818 - it is a control-flow signal, not an error
    """Raised by a step to end the turn with an outcome (the runner catches it)."""

    def __init__(self, outcome: Outcome, detail: str = ""):
        super().__init__(f"{outcome}: {detail}" if detail else str(outcome))
        self.outcome = outcome
        self.detail = detail


class Messages:
    """The town-editable French message of each outcome, with ``{placeholders}`` filled from the town file.

    >>> Messages({"answered": "", "unanswerable_no_sources": "Appelez {contact}."}, {"contact": "l'accueil"}
    ...          ).for_outcome(Outcome.UNANSWERABLE_NO_SOURCES)
    "Appelez l'accueil."
    """

    def __init__(self, texts: dict[str, str], town: dict[str, str]):
        self.texts, self.town = texts, town

    @classmethod
    def load(cls, messages_file: Path, town: dict[str, Any]) -> Messages:
        texts = load_yaml(messages_file)
        missing = [key for key in [*(o.value for o in Outcome), *NOTICES] if key not in texts]
        if missing:
            raise ConfigError(f"{messages_file} has no message for {', '.join(missing)}.")
        return cls({k: str(v) for k, v in texts.items()}, town)

    def for_outcome(self, outcome: Outcome, service: str | None = None) -> str:
        """The outcome's message; ``{service}`` is the contact of the service the resident is sent to (the
        reception by default)."""
        return self.text(outcome.value, service=service or str(self.town.get("reception", "")))

    def text(self, key: str, **values: str) -> str:
        """Any message of the file by key, its placeholders filled from the town file and ``values``."""
        try:
            return self.texts[key].format(**self.town, **values).strip()
        except KeyError as exc:
            raise ConfigError(f"Message '{key}' uses {exc} which the town file does not define.") from None
