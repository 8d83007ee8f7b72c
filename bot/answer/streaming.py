"""Showing a draft answer while the model writes it, without showing an unchecked figure or contact.

The model writes ``{"source": "S1", "reponse": "..."}`` token by token. ``DraftStream`` reads the answer text
out of that partial JSON and releases it word by word, except that a sentence holding a digit, a currency sign
or an e-mail is held back whole: such facts reach the resident only in the final answer, after the output
guard has checked them against the cited passage.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic_core import from_json

_HELD = re.compile(r"[\d€@]")  # figures, prices, dates, hours, phone numbers, e-mails
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def partial_json_string(raw: str, key: str) -> str:
    """The value of string field ``key`` in a JSON object that may still be incomplete.

    >>> partial_json_string('{"source": "S1", "reponse": "Le passeport d\\\\u00', "reponse")  # an escape cut short
    'Le passeport d'
    >>> partial_json_string('{"source": "S1", "reponse": "Le passeport d\\\\u00e9livr', "reponse")
    'Le passeport délivr'
    >>> partial_json_string('{"source": "S1", "rep', "reponse")
    ''
    """
    try:  # pydantic-core parses JSON cut anywhere, an escape cut short included
        parsed = from_json(raw[raw.find("{") :], allow_partial="trailing-strings") if "{" in raw else {}
    except ValueError:
        return ""
    value = parsed.get(key, "") if isinstance(parsed, dict) else ""
    return value if isinstance(value, str) else ""


def releasable(text: str) -> str:
    """The longest prefix of ``text`` that can be shown before the checks.

    >>> releasable("Il faut un justificatif. Le tarif est de 86 € pour")
    'Il faut un justificatif.'
    >>> releasable("Il faut se présenter en mair")
    'Il faut se présenter en'
    """
    shown, rest = "", text
    while True:
        end = _SENTENCE_END.search(rest)
        sentence = rest[: end.end()] if end else rest
        if _HELD.search(sentence):
            return shown.rstrip()
        if not end:
            # An unfinished sentence: show whole words only.
            cut = sentence.rfind(" ")
            return (shown + sentence[:cut]).rstrip() if cut > 0 else shown.rstrip()
        shown, rest = shown + sentence, rest[end.end() :]


class DraftStream:
    """Turns the model's growing raw output into deltas of releasable answer text for ``emit``."""

    def __init__(self, emit: Callable[[str], None]):
        self.emit, self.sent = emit, ""

    def __call__(self, raw: str) -> None:
        self.show(partial_json_string(raw, "reponse"))

    def show(self, text: str) -> None:
        """Emit what ``text`` (the whole answer so far) adds to what was released before."""
        shown = releasable(text)
        if len(shown) > len(self.sent) and shown.startswith(self.sent):
            self.emit(shown[len(self.sent) :])
            self.sent = shown
