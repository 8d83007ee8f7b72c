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
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import phonenumbers

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_FRENCH_PHONE = re.compile(r"(?<!\d)(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)")
URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\"']+", re.I)


@dataclass(frozen=True)
class PhoneMatch:
    """A phone number found in a text: where, as written, and its digits in French national form."""

    start: int
    end: int
    raw: str
    digits: str

    def group(self) -> str:  # what a regular expression's match gives, for callers that take either
        return self.raw


class PhoneNumbers:
    """Phone numbers in a text: the phonenumbers library's matcher (French and international numbers, any
    spacing, "+33 (0)1 …"), with the plain French pattern as a backstop, so nothing phone-like escapes a check.

    Offers the three methods of a compiled pattern that callers use: ``search``, ``findall`` and ``sub``.

    >>> PHONE.findall("Appelez le +33 (0)1 99 00 12 34 ou le 06.12.34.56.78.")
    ['+33 (0)1 99 00 12 34', '06.12.34.56.78']
    >>> [m.digits for m in PHONE.finditer("+33 (0)1 99 00 12 34")]
    ['0199001234']
    """

    def finditer(self, text: str) -> Iterator[PhoneMatch]:
        found: list[PhoneMatch] = []
        for match in phonenumbers.PhoneNumberMatcher(text, "FR", leniency=phonenumbers.Leniency.POSSIBLE):
            national = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.NATIONAL)
            digits = re.sub(r"\D", "", national if match.number.country_code == 33 else match.raw_string)
            found.append(PhoneMatch(match.start, match.end, match.raw_string, digits))
        for plain in _FRENCH_PHONE.finditer(text):
            if not any(m.start < plain.end() and plain.start() < m.end for m in found):
                digits = re.sub(r"\D", "", plain.group())
                digits = "0" + digits[2:] if plain.group().startswith("+") else digits
                found.append(PhoneMatch(plain.start(), plain.end(), plain.group(), digits))
        return iter(sorted(found, key=lambda m: m.start))

    def search(self, text: str) -> PhoneMatch | None:
        return next(self.finditer(text), None)

    def findall(self, text: str) -> list[str]:
        return [m.raw for m in self.finditer(text)]

    def sub(self, replacement: str | Callable[[PhoneMatch], str], text: str) -> str:
        out, at = [], 0
        for match in self.finditer(text):
            out += [text[at : match.start], replacement if isinstance(replacement, str) else replacement(match)]
            at = match.end
        return "".join(out) + text[at:]


PHONE = PhoneNumbers()

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
