"""Text rules used across the layers, each written once: how text is normalised and folded, how a passage's
evidence is assembled, and what an e-mail address, a phone number and a URL look like.

>>> fold("  Carte d’IDENTITÉ ")
"carte d'identite"
>>> question_key("Combien coûte un PASSEPORT ?") == question_key("combien coute un passeport")
True
"""

from __future__ import annotations

import re
import unicodedata

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
PHONE = re.compile(r"(?<!\d)(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)")  # French numbers, national or +33
URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\"']+", re.I)

# Format characters (Cf: zero-width, bidi overrides, Unicode tag characters) and controls other than
# whitespace can hide text from a human reader while a model still reads it.
_INVISIBLE = {"Cf", "Cc", "Co", "Cs"}


def clean_text(text: str) -> str:
    """Strip invisible and control characters, normalise to NFC and collapse whitespace (a resident's input).

    >>> clean_text("Horaires\\u200b de la\\tmairie\\U000E0041 ?")
    'Horaires de la mairie ?'
    """
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        " " if ch in "\t\n\r" else ch for ch in text if ch in "\t\n\r" or unicodedata.category(ch) not in _INVISIBLE
    )
    return re.sub(r"\s+", " ", text).strip()


def normalize(text: str) -> str:
    """NFC, lower case, no-break spaces as spaces, typographic apostrophes as ', whitespace collapsed."""
    text = unicodedata.normalize("NFC", text).replace("\u00a0", " ").replace("\u202f", " ")
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", text).strip().lower()


def fold_accents(text: str) -> str:
    """Lower case without accents, so "identite" typed on a phone matches "identité" (search tokens)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(text: str) -> str:
    """Lower case, accents removed, typographic apostrophes as ', whitespace collapsed (for patterns)."""
    return re.sub(r"\s+", " ", fold_accents(text.replace("\u2019", "'"))).strip()


def question_key(question: str) -> str:
    """The question as the validated answers compare it: accents, case, punctuation and spacing ignored."""
    return " ".join(re.findall(r"\w+", fold(question)))


def evidence(title: str, headings: list[str], text: str) -> str:
    """What a passage says, as searched and checked: its title, its heading path and its text."""
    return " ".join([title, *headings, text])
