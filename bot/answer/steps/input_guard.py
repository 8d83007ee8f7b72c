"""InputGuard: clean the question before anything else sees it, and refuse what cannot be a question."""

from __future__ import annotations

import re

from bot.answer.outcomes import EndTurn, Outcome
from bot.answer.redaction import redact
from bot.answer.turn import Turn
from bot.language.abbreviations import spelled_out
from bot.text import clean_text


class InputGuard:
    """Cleans ``turn.question``, masks personal data in it and writes out its text-message abbreviations; ends
    the turn on an empty or over-long message.

    Masking happens here, first, so neither the model, the logs nor analytics ever see the raw data.
    """

    def __init__(self, max_chars: int):
        self.max_chars = max_chars

    def run(self, turn: Turn) -> None:
        turn.question, redacted = redact(clean_text(turn.question))
        if redacted:
            turn.redacted = turn.trace["redacted"] = redacted
        if not re.search(r"\w", turn.question):
            raise EndTurn(Outcome.REFUSED_EMPTY_QUESTION)
        if len(turn.question) > self.max_chars:
            raise EndTurn(Outcome.REFUSED_TOO_LONG, f"{len(turn.question)} > {self.max_chars} characters")
        written = spelled_out(turn.question)
        if written != turn.question:
            turn.trace["as_typed"] = turn.question
            turn.question = written
