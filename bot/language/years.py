"""The year a question asks about, when it names one: "cette année", "l'année prochaine", "les tarifs 2027".

An answer whose documents are all from an earlier year then says their year (``Answerer``): a 2025 tariff is not
this year's price.
"""

from __future__ import annotations

import re
from datetime import date

from bot.text import fold

THIS_YEAR = re.compile(r"\b(?:cette annee|cet an|annee en cours)\b")
NEXT_YEAR = re.compile(r"\b(?:l ?annee prochaine|l ?an prochain|annee suivante)\b")
A_YEAR = re.compile(r"(?<![\d,.])(20\d\d)(?![\d,.]|\s*(?:€|euros?\b))")  # not a price ("2025 €") nor part of a number


def asked_year(question: str, today: date) -> int | None:
    """The latest year the question asks about, or None.

    >>> asked_year("Quel est le prix de la cantine cette année ?", date(2026, 12, 7))
    2026
    >>> asked_year("Les tarifs de la piscine pour l'an prochain ?", date(2026, 12, 7))
    2027
    >>> asked_year("inscription scolaire rentrée 2027-2028", date(2026, 12, 7))
    2028
    >>> asked_year("Combien coûte un passeport ?", date(2026, 12, 7)) is None
    True
    """
    folded = fold(question).replace("'", " ").replace("’", " ")
    years = [int(y) for y in A_YEAR.findall(folded)]
    if THIS_YEAR.search(folded):
        years.append(today.year)
    if NEXT_YEAR.search(folded):
        years.append(today.year + 1)
    return max(years) if years else None
