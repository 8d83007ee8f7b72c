"""What a draft answer claims beyond its figures, checked against the sentences of its source.

The small model restates passages unreliably: it answers "Oui" where the official text says "Non", echoes the
question back with a yes, reads the wrong row of a table, or dates a future event from a years-old page. Each
function here names one such class of failure, from the meaning of the texts, never from a question's wording.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet

from bot.answer.textmatch import ROW_LABEL, sentences
from bot.language.numerals import quantities, unit_of
from bot.language.words import NO_CLAIM, content_terms
from bot.language.yes_no import yes_or_no
from bot.text import fold

_UPCOMING = re.compile(
    r"\bprochaine?s?\b|\b(aura|auront|sera|seront) lieu\b|\bà venir\b|\bcette année\b|\bbientôt\b"
    r"|\bquand (a|aura) lieu\b",
    re.I,
)
_CATEGORY = re.compile(r"\b((?:tranche|categorie|zone|quotient|q)\s*\d+)\b")
_RANGES_FROM_TO = re.compile(r"\bde (\d+) a (\d+)\s*(ans|an|€|euros?|m²|m2|mois|jours?)?")
_RANGES_OPEN = re.compile(
    r"\b(moins de|plus de|inferieure? a|superieure? a|a partir de|jusqu'a) (\d+)\s*(ans|an|€|euros?|m²|m2|mois|jours?)"
)
_AND_ABOVE = re.compile(r"\b(\d+)\s*(ans|an|€|euros?|m²|m2|mois|jours?) et plus\b")
_WHEN = re.compile(r"\bquand\b|\bdates?\b|\bcalendrier\b|\bà quelle période\b", re.I)
_YEAR = re.compile(r"\b(19[5-9]\d|20\d\d)\b")


def echoes_the_question(draft: str, question: str) -> bool:
    """True when the draft only says yes or no to the question in the question's own words: it claims
    something the documents were not shown to support.

    >>> echoes_the_question("Oui, vous pouvez transformer votre garage.", "Peut-on transformer son garage ?")
    True
    >>> echoes_the_question("Oui, avec une déclaration préalable.", "Peut-on transformer son garage ?")
    False
    """
    return not (content_terms(draft) - content_terms(question) - NO_CLAIM)


def unsupported_words(draft: str, evidence: str, question: str) -> set[str]:
    """The topic words of the draft that neither the passages shown nor the question hold: what it says beyond
    them ("Un récépissé vous sera remis.", "Se faire recenser est obligatoire"), however true, no document shown
    supports. A bare yes or no claims nothing of its own.

    >>> sorted(unsupported_words("Oui, un récépissé vous est remis.", "Déclarez le vol au consulat.", "Que faire ?"))
    ['recep', 'rem']
    >>> unsupported_words("Oui, au consulat.", "Déclarez le vol au consulat.", "Où déclarer le vol ?")
    set()
    """
    return content_terms(draft) - content_terms(f"{evidence} {question}") - NO_CLAIM


def figure_tied_to_the_question(
    draft: str, evidence: str, question: str, frame: AbstractSet[str] = frozenset()
) -> set[str]:
    """The words that tie a figure of the draft to what the question asks, when only the question holds them:
    "Il reste 20 places" from "une place par tranche de 20 places" answers "combien de places reste-t-il ?" with
    a number the documents give for something else. A question's words may restate what is asked, never carry a
    figure. ``frame``: words of a kind of fact ("coûte", "ouvre"), whose value is checked on its own. (Words that
    neither the question nor the passages hold are ``unsupported_words``.)

    >>> question = "Combien de places reste-t-il à la crèche ?"
    >>> sorted(figure_tied_to_the_question("Il reste 20 places à la crèche.", "Une place par tranche de 20 places "
    ...                                    "d'accueil en crèche.", question))
    ['rest']
    >>> figure_tied_to_the_question("La crèche a 20 places.", "La crèche a 20 places d'accueil.", question)
    set()
    """
    asked = quantities(question)
    only_asked = content_terms(question) - content_terms(evidence) - NO_CLAIM - frame
    return {
        word
        for sentence in sentences(draft)
        if quantities(sentence) - asked
        for word in content_terms(sentence) & only_asked
    }


def adds_to(quote: str, draft: str, min_new_terms: int = 2) -> bool:
    """True when the official quote carries topic words the draft does not: a condition, a case, a place.

    >>> adds_to("Le Pacs s'enregistre en mairie ou chez un notaire.", "En mairie.")
    True
    >>> adds_to("Titre : Passeport ; Situation : Majeur ; Prix : 86 €", "Un passeport de majeur coûte 86 €.")
    False
    """
    values = ROW_LABEL.sub(" ", quote)  # a table row's column names are not information
    return len(content_terms(values) - content_terms(draft)) >= min_new_terms


def contradicts_source(draft: str, support: list[str]) -> bool:
    """True when the draft opens with yes (no) and a supporting sentence of its source opens with no (yes).

    >>> contradicts_source("Oui, vous pouvez la vendre.", ["Non, il n'est pas possible de la vendre."])
    True
    """
    said = yes_or_no(draft)
    return bool(said) and any(yes_or_no(s) not in ("", said) for s in support)


def rows_for_the_situation(question: str, text: str) -> list[str]:
    r"""The sentences or table rows of ``text`` that apply to the situation the question gives: the same
    quantity ("30 ans", "15 m²"), a range holding it ("17 ans" → "de 15 ans et plus"), or the same numbered
    category ("tranche 2").

    >>> rows_for_the_situation("Prix d'une concession de 30 ans ?", "Durée : 15 ans ; 180 €\nDurée : 30 ans ; 400 €")
    ['Durée : 30 ans ; 400 €']
    >>> rows = "Mineur de 15 ans et plus : 42 €\nMineur de moins de 15 ans : 17 €"
    >>> rows_for_the_situation("Passeport pour mon fils de 17 ans ?", rows)
    ['Mineur de 15 ans et plus : 42 €']
    >>> rows_for_the_situation("Repas en tranche 1 ?", "Tranche 1 : repas 1 €\nTranche 2 : repas 2,40 €")
    ['Tranche 1 : repas 1 €']
    """
    asked = {q for q in quantities(question) if q[1]}
    categories = set(_CATEGORY.findall(fold(question)))
    if not asked and not categories:
        return []
    found = sentences(text)
    exact = [s for s in found if quantities(s) & asked or categories & set(_CATEGORY.findall(fold(s)))]
    if exact or not asked:
        return exact
    return [s for s in found if any(_in_range(float(n), unit, s) for n, unit in asked)]


def rows_named_by(question: str, text: str) -> list[str]:
    r"""The table rows of ``text`` the question names in words: rows whose values (not their column names) hold
    a topic word of the question that the other rows do not ("quelqu'un de l'extérieur" → the row "Personne
    extérieure à la commune"). None when the question names no row, or names them all.

    >>> rows = ("Locataire : Habitant de la commune ; Prix : 350 €\nLocataire : Personne extérieure à la commune ; "
    ...         "Prix : 650 €\nLocataire : Association ; Prix : 150 €")
    >>> rows_named_by("Location de la salle pour quelqu'un de l'extérieur ?", rows)
    ['Locataire : Personne extérieure à la commune ; Prix : 650 €']
    >>> rows_named_by("Combien coûte la location de la salle ?", rows)
    []
    """
    # Table rows as ingestion writes them ("Locataire : … ; Prix : 650 €"): a "Tranche 1 : matin 0,80 €" line
    # of prose names a time of day, not a row of a table.
    rows = [s for s in sentences(text) if " ; " in s and ROW_LABEL.match(s) and quantities(s)]
    if len(rows) < 2:
        return []
    values = [content_terms(ROW_LABEL.sub(" ", row)) for row in rows]
    everywhere = set.intersection(*values)
    wanted = content_terms(question) - everywhere
    named = [row for row, terms in zip(rows, values, strict=True) if terms & wanted]
    return named if len(named) < len(rows) else []


def _in_range(value: float, unit: str, row: str) -> bool:
    """Whether a row states a range of ``unit`` that holds ``value`` ("moins de 15 ans", "de 500 à 899")."""
    text = fold(row)
    for low, high, row_unit in _RANGES_FROM_TO.findall(text):
        if (unit_of(row_unit) or unit) == unit and float(low) <= value <= float(high):
            return True
    for kind, bound, row_unit in _RANGES_OPEN.findall(text):
        if unit_of(row_unit) != unit:
            continue
        below = kind in ("moins de", "inferieur a", "inferieure a", "jusqu'a")
        if (below and value < float(bound)) or (not below and value >= float(bound)):
            return True
    return any(unit_of(row_unit) == unit and value >= float(bound) for bound, row_unit in _AND_ABOVE.findall(text))


def dates_a_future_event_from_the_past(draft: str, question: str, this_year: int, source_title: str = "") -> bool:
    """True when the question asks about something to come and the draft's only years are past ones, or it
    asks when something happens and the answer comes from a calendar of past years (its title's years).

    >>> question = "Quand sont les prochaines élections ?"
    >>> dates_a_future_event_from_the_past("Elles auront lieu en mars 2020.", question, 2026)
    True
    >>> title = "Calendrier des vacances scolaires 2019-2020"
    >>> dates_a_future_event_from_the_past("Du 19 octobre au 4 novembre.", "Dates des vacances ?", 2026, title)
    True
    """
    years = [int(y) for y in _YEAR.findall(draft)]
    if _UPCOMING.search(question) and years and max(years) < this_year:
        return True
    dated = [int(y) for y in _YEAR.findall(source_title)]
    return bool(_WHEN.search(question) and dated and max(dated) < this_year)
