"""InputGuard: clean the question before anything else sees it, and refuse what cannot be a question."""

from __future__ import annotations

import re
import unicodedata

from bot.answer.outcomes import EndTurn, Outcome
from bot.answer.redaction import redact
from bot.answer.turn import Turn

# Format characters (Cf: zero-width, bidi overrides, Unicode tag characters) and controls other than
# whitespace can hide text from a human reader while a model still reads it.
_INVISIBLE = {"Cf", "Cc", "Co", "Cs"}


def clean_text(text: str) -> str:
    """Strip invisible and control characters, normalise to NFC and collapse whitespace.

    >>> clean_text("Horaires\\u200b de la\\tmairie\\U000E0041 ?")
    'Horaires de la mairie ?'
    """
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        " " if ch in "\t\n\r" else ch for ch in text if ch in "\t\n\r" or unicodedata.category(ch) not in _INVISIBLE
    )
    return re.sub(r"\s+", " ", text).strip()


class InputGuard:
    """Cleans ``turn.question`` and masks personal data in it; ends the turn on an empty or over-long message.

    Masking happens here, first, so neither the model, the logs nor analytics ever see the raw data.
    """

    def __init__(self, max_chars: int):
        self.max_chars = max_chars

    def run(self, turn: Turn) -> None:
        turn.question, redacted = redact(clean_text(turn.question))
        if redacted:
            turn.trace["redacted"] = redacted
        if not re.search(r"\w", turn.question):
            raise EndTurn(Outcome.REFUSED_EMPTY_QUESTION)
        if len(turn.question) > self.max_chars:
            raise EndTurn(Outcome.REFUSED_TOO_LONG, f"{len(turn.question)} > {self.max_chars} characters")
