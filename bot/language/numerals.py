"""Numbers as French writes them: thousands spaced or dotted, a decimal comma, and the units a figure is read with.

>>> sorted(quantities("20 places, 1 000 € et 3 jours ouvrés ; 24 heures ; tranche 2"))
[('1000', '€'), ('2', ''), ('20', 'place'), ('24', 'h'), ('3', 'jour')]
>>> unit_of("Années")
'an'
"""

from __future__ import annotations

import re

from bot.text import EMAIL, PHONE, URL, fold_accents, normalize

NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# Units a figure is read with: "20 places" is not supported by "20 m²" nor by "20 €". Each maps to one form.
UNITS = {
    "€": "€", "euro": "€", "euros": "€", "%": "%", "h": "h", "heure": "h", "heures": "h", "min": "min",
    "minute": "min", "minutes": "min", "jour": "jour", "jours": "jour", "semaine": "semaine", "semaines": "semaine",
    "mois": "mois", "an": "an", "ans": "an", "année": "an", "années": "an", "m²": "m²", "m2": "m²", "m³": "m³",
    "m3": "m³", "m": "m", "mètre": "m", "mètres": "m", "cm": "cm", "centimètre": "cm", "centimètres": "cm",
    "km": "km", "place": "place", "places": "place", "personne": "personne", "personnes": "personne",
    "page": "page", "pages": "page", "objet": "objet", "objets": "objet", "enfant": "enfant", "enfants": "enfant",
}  # fmt: skip
_FOLDED_UNITS = {fold_accents(word): unit for word, unit in UNITS.items()}
_QUANTITY = re.compile(r"(?<![\d.,])(\d+(?:[.,]\d+)?)\s*(€|%|m²|m³|[a-zéèêû0-9]+)?")


def join_thousands(text: str) -> str:
    """ "1 000" and "1.000" as "1000"."""
    return re.sub(r"(?<=\d)[ .](?=\d{3}(?!\d))", "", text)


def unit_of(word: str) -> str:
    """The unit a word names ("ans", "années" → "an"; "euros" → "€"), or ""."""
    return _FOLDED_UNITS.get(fold_accents(word.lower()), "")


def without_contacts(text: str) -> str:
    """The normalised text with its e-mails, URLs and phone numbers blanked, so their digits are not numbers."""
    return PHONE.sub(" ", URL.sub(" ", EMAIL.sub(" ", normalize(text))))


def quantities(text: str) -> set[tuple[str, str]]:
    """(number, unit) pairs of a text; the unit is "" for a number written without a known unit."""
    stripped = without_contacts(text)
    return {
        (number.replace(",", "."), UNITS.get(unit, "")) for number, unit in _QUANTITY.findall(join_thousands(stripped))
    }
