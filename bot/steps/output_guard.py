"""OutputGuard: nothing reaches the resident that the cited passage does not support."""

from __future__ import annotations

import re

from bot.outcomes import EndTurn, Outcome
from bot.textmatch import (
    EMAIL,
    MASKED,
    PHONE,
    content_terms,
    figures,
    normalize,
    sentences,
    unsupported_figures,
    without_personal_clauses,
)
from bot.turn import Citation, Passage, Turn

MIN_ANSWER_WORDS = 4
# A question that asks for one of these kinds of fact is answered only by a reply that contains one.
ASKED_FACTS = {
    "contact": (
        re.compile(
            r"t[ée]l[ée]phone|num[ée]ro (de|pour) (t[ée]l|joindre|appeler)|appeler|joindre|\b(e-?)?mail\b|courriel"
        ),
        lambda text: bool(PHONE.search(text) or EMAIL.search(text)),
    ),
    "price": (
        re.compile(r"combien (co[uû]te|ça co[uû]te|ca co[uû]te)|\bprix\b|\btarifs?\b|\bco[uû]t\b|payante?\b"),
        lambda text: bool(re.search(r"\d\s*(€|euros?)|gratuit|payant|\d+[.,]\d{2}", text)),
    ),
    "hours": (
        re.compile(r"horaires?|heures? d.ouverture|[àa] quelle heure|ouvert|ferm[ée]"),
        lambda text: bool(re.search(r"\d\s*h|\d{1,2}:\d{2}|ferm[ée]|ouvert", text)),
    ),
}


def supporting_sentences(passage: Passage, answer: str, question: str, max_sentences: int = 2) -> list[str]:
    """The passage's sentence(s) or table row(s) that best support the answer, verbatim, in their order.

    Shared figures count most, then shared topic words; a sentence scoring under half the best is dropped.
    """
    found = sentences(passage.text) or [passage.text.strip()]
    answer_figures, answer_terms = figures(answer), content_terms(answer) | content_terms(question)
    scores = [3 * len(figures(s) & answer_figures) + len(content_terms(s) & answer_terms) for s in found]
    best = max(scores)
    ranked = sorted(range(len(found)), key=lambda i: scores[i], reverse=True)[:max_sentences]
    kept = [i for i in ranked if scores[i] > 0 and scores[i] * 2 >= best] or ranked[:1]
    return [found[i] for i in sorted(kept)]


def supporting_quote(passage: Passage, answer: str, question: str) -> str:
    """``supporting_sentences`` joined for display."""
    return " […] ".join(supporting_sentences(passage, answer, question))


def _evidence(passage: Passage) -> str:
    return " ".join([passage.title, *passage.headings, passage.text])


class OutputGuard:
    """Builds the citations, then checks every figure and contact of the draft against the cited passage.

    A draft with a figure the passage lacks is replaced by the passage's own supporting sentences
    (outcome ``answered_from_quote``); a draft with no cited passage never reaches this step. A question
    asking for a phone number or opening hours needs a reply that holds one; otherwise the sources do not
    have it (``unanswerable_no_sources``), whatever the model wrote.
    """

    def __init__(self, directory: list[str] = ()):
        self.directory = " ".join(directory)  # the town's own contacts, always allowed

    def run(self, turn: Turn) -> None:
        cited = [p for p in turn.passages if p.label in turn.cited_labels]
        if not cited:
            raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, "no cited passage")
        cited = self._best_supporting(turn, cited)
        turn.citations = [
            Citation(
                title=p.title,
                source=p.source,
                url=p.url,
                date=p.date,
                quote=supporting_quote(p, turn.draft, turn.question),
            )
            for p in cited
        ]
        unsupported = self._unsupported(turn.draft, cited)
        turn.metrics["output_guard"] = {"unsupported_figures": sorted(unsupported)}
        if unsupported:
            turn.answer = turn.citations[0].quote
            turn.outcome = Outcome.ANSWERED_FROM_QUOTE
        else:
            turn.answer = turn.draft
            turn.outcome = Outcome.ANSWERED
            if len(turn.draft.split()) < MIN_ANSWER_WORDS:  # "Non", "45 €": add the official sentence
                turn.answer = f"{turn.draft.rstrip('. ')}. {turn.citations[0].quote}"
        self._check_asked_fact(turn)

    @staticmethod
    def _check_asked_fact(turn: Turn) -> None:
        # What the resident asks, not what they told about themselves ("mon mail est [courriel]")
        question = normalize(MASKED.sub(" ", without_personal_clauses(turn.question)))
        for kind, (asks, holds) in ASKED_FACTS.items():
            if asks.search(question) and not holds(normalize(turn.answer)):
                raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, f"asked for {kind}, the reply holds none")

    def _unsupported(self, draft: str, passages: list[Passage]) -> set[str]:
        """Figures and contacts of ``draft`` found neither in ``passages`` nor in the town directory."""
        return unsupported_figures(draft, " ".join([*map(_evidence, passages), self.directory]))

    def _best_supporting(self, turn: Turn, cited: list[Passage]) -> list[Passage]:
        """The small model often cites the wrong label: if another passage it was shown holds every figure
        of the draft and the cited one does not, that passage is the true source."""
        if not self._unsupported(turn.draft, cited):
            return cited
        for passage in turn.passages:
            if passage not in cited and not self._unsupported(turn.draft, [passage]):
                turn.cited_labels = [passage.label]
                turn.metrics["citation_relabelled"] = True
                return [passage]
        return cited
