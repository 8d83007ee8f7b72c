"""Personal data in a resident's message, masked before the model, the logs or anything else sees it.

>>> redact("Je suis né le 12/03/1980, mon mail est jean.dupont@example.fr")
('Je suis né le [date de naissance], mon mail est [courriel]', ['courriel', 'date de naissance'])
"""

from __future__ import annotations

import re

from stdnum import luhn
from stdnum.fr import nir, siret

from bot.text import EMAIL, PHONE, PhoneMatch, PhoneNumbers

# Order matters: longer, more specific patterns first, so an IBAN is not taken for a phone number.
PATTERNS: list[tuple[str, re.Pattern[str] | PhoneNumbers]] = [
    ("courriel", EMAIL),
    ("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[0-9A-Z]{4}){3,7}(?:[ ]?[0-9A-Z]{1,4})?\b")),
    (
        "numéro de sécurité sociale",
        re.compile(
            r"\b[12][ .]?\d{2}[ .]?(?:0[1-9]|1[0-2]|[2-9]\d)[ .]?(?:\d{2}|2[AB])[ .]?\d{3}[ .]?\d{3}(?:[ .]?\d{2})?\b"
        ),
    ),
    ("numéro de carte", re.compile(r"\b(?:\d{4}[ -]?){3}\d{1,7}\b")),
    ("numéro de téléphone", PHONE),
    (
        "date de naissance",
        re.compile(
            r"(?<=n[ée] le )\d{1,2}[/. -]\d{1,2}[/. -]\d{2,4}|(?<=n[ée]e le )\d{1,2}[/. -]\d{1,2}[/. -]\d{2,4}"
            r"|(?<=naissance : )\d{1,2}[/. -]\d{1,2}[/. -]\d{2,4}",
            re.I,
        ),
    ),
    (
        "adresse",
        re.compile(
            r"\b\d{1,4}(?: ?(?:bis|ter))?,? (?:rue|avenue|av\.|boulevard|bd|chemin|all[ée]e|impasse|place|route|quai"
            r"|cours|lotissement|r[ée]sidence)\b[^,.;!?\n]{2,40}",
            re.I,
        ),
    ),
]


# Kinds whose pattern a company's SIRET (14 digits, Luhn) also fits; python-stdnum tells them apart.
BUSINESS_LOOKALIKES = {"numéro de carte", "numéro de sécurité sociale"}


def redact(text: str) -> tuple[str, list[str]]:
    """The text with each piece of personal data replaced by ``[its kind]``, and the kinds found."""
    found: list[str] = []
    for kind, pattern in PATTERNS:

        def mask(match: re.Match[str] | PhoneMatch, kind: str = kind) -> str:
            digits = re.sub(r"\D", "", match.group())
            if kind == "numéro de carte" and not luhn.is_valid(digits):
                return match.group()  # a long number that is not a payment card
            if kind in BUSINESS_LOOKALIKES and siret.is_valid(digits) and not nir.is_valid(digits):
                return match.group()  # a company's SIRET: public, and what the question is about
            if kind not in found:
                found.append(kind)
            return f"[{kind}]"

        text = pattern.sub(mask, text)
    return text, found
