"""Statements and questions made to say something else, by rules of form: the verifier's contradictions.

Each function changes one thing a resident relies on (the polarity, a figure, the case, the authority) and returns
the changed text, or None when the text holds nothing it could change. A sentence that says the original is then
*contradicted* by it, and a question changed this way is no longer answered by the original's sentence.

>>> negated("Le timbre fiscal est obligatoire.")
"Le timbre fiscal n'est pas obligatoire."
>>> other_figure("Le passeport coûte 86 €.", ["86", "42"])
'Le passeport coûte 42 €.'
>>> other_case("Passeport pour un majeur : 86 €")
'Passeport pour un mineur : 86 €'
"""

from __future__ import annotations

import re

from bot.language.numerals import NUMBER
from bot.language.situations import AUTHORITIES, OPPOSED_CASES

# Negation added or removed: "est" -> "n'est pas", "peut" -> "ne peut pas", and back.
_VERBS = ("est", "sont", "peut", "peuvent", "doit", "doivent", "faut", "a", "ont", "pouvez", "devez", "sera", "seront")
_NEGATIVE = re.compile(r"\b(?:ne|n')\s?(" + "|".join(_VERBS) + r")\s+(pas|plus|jamais)\b", re.I)
_POSITIVE = re.compile(r"\b(" + "|".join(_VERBS) + r")\b", re.I)
_YES_NO = re.compile(r"^(\W*)(oui|non)\b", re.I)
_VOWEL = re.compile(r"^[aeiouéèêh]", re.I)


def negated(text: str) -> str | None:
    """The text with its yes/no, or its first verb's negation, turned the other way.

    >>> negated("Non, il ne faut pas de justificatif.")
    'Oui, il ne faut pas de justificatif.'
    >>> negated("Vous ne pouvez pas vous inscrire en ligne.")
    'Vous pouvez vous inscrire en ligne.'
    """
    opening = _YES_NO.match(text)
    if opening:
        flipped = "Non" if opening.group(2).lower() == "oui" else "Oui"
        return text[: opening.start(2)] + flipped + text[opening.end(2) :]
    negative = _NEGATIVE.search(text)
    if negative:
        return text[: negative.start()] + negative.group(1) + text[negative.end() :]
    positive = _POSITIVE.search(text)
    if positive:
        verb = positive.group(1)
        ne = "n'" if _VOWEL.match(verb) else "ne "
        return f"{text[: positive.start()]}{ne}{verb} pas{text[positive.end() :]}"
    return None


def other_figure(text: str, pool: list[str]) -> str | None:
    """The text with its first number replaced by another one of ``pool`` (the same passage's figures: another
    row's), or by a near number when the pool has none."""
    found = NUMBER.search(text)
    if not found:
        return None
    number = found.group()
    others = [n for n in pool if n != number and n.replace(",", ".") != number.replace(",", ".")]
    if others:
        replacement = others[0]
    else:
        value = float(number.replace(",", "."))
        replacement = str(int(value) * 2 if value.is_integer() else round(value * 2, 2)).replace(".", ",")
    return text[: found.start()] + replacement + text[found.end() :]


def other_case(text: str) -> str | None:
    """The text with the first situation word of ``OPPOSED_CASES`` it holds replaced by its opposite."""
    for first, second in OPPOSED_CASES:
        for word, opposite in ((first, second), (second, first)):
            found = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.I)
            if found:
                return text[: found.start()] + opposite + text[found.end() :]
    return None


def other_authority(text: str) -> str | None:
    """The text with the authority it names replaced by another one."""
    for n, authority in enumerate(AUTHORITIES):
        found = re.search(rf"(?<!\w){re.escape(authority)}(?!\w)", text, re.I)
        if found:
            other = AUTHORITIES[(n + 1) % len(AUTHORITIES)]
            return text[: found.start()] + other + text[found.end() :]
    return None
