"""OutputGuard: nothing reaches the resident that the cited passage does not support."""

from __future__ import annotations

import re

from bot.outcomes import EndTurn, Outcome
from bot.textmatch import content_terms, figures, unsupported_figures
from bot.turn import Citation, Passage, Turn

SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def supporting_sentences(passage: Passage, answer: str, question: str, max_sentences: int = 2) -> list[str]:
    """The passage's sentence(s) or table row(s) that best support the answer, verbatim, in their order.

    Shared figures count most, then shared topic words; a sentence scoring under half the best is dropped.
    """
    sentences = [s.strip(" -") for s in SENTENCE_END.split(passage.text) if len(s.strip(" -")) > 2]
    if not sentences:
        return [passage.text.strip()]
    answer_figures, answer_terms = figures(answer), content_terms(answer) | content_terms(question)
    scores = [3 * len(figures(s) & answer_figures) + len(content_terms(s) & answer_terms) for s in sentences]
    best = max(scores)
    ranked = sorted(range(len(sentences)), key=lambda i: scores[i], reverse=True)[:max_sentences]
    kept = [i for i in ranked if scores[i] > 0 and scores[i] * 2 >= best] or ranked[:1]
    return [sentences[i] for i in sorted(kept)]


def supporting_quote(passage: Passage, answer: str, question: str) -> str:
    """``supporting_sentences`` joined for display."""
    return " […] ".join(supporting_sentences(passage, answer, question))


def _evidence(passage: Passage) -> str:
    return " ".join([passage.title, *passage.headings, passage.text])


class OutputGuard:
    """Builds the citations, then checks every figure and contact of the draft against the cited passage.

    A draft with a figure the passage lacks is replaced by the passage's own supporting sentences
    (outcome ``answered_from_quote``); a draft with no cited passage never reaches this step.
    """

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
        unsupported = unsupported_figures(turn.draft, " ".join(_evidence(p) for p in cited))
        turn.metrics["output_guard"] = {"unsupported_figures": sorted(unsupported)}
        if unsupported:
            turn.answer = turn.citations[0].quote
            turn.outcome = Outcome.ANSWERED_FROM_QUOTE
        else:
            turn.answer = turn.draft
            turn.outcome = Outcome.ANSWERED

    @staticmethod
    def _best_supporting(turn: Turn, cited: list[Passage]) -> list[Passage]:
        """The small model often cites the wrong label: if another passage it was shown holds every figure
        of the draft and the cited one does not, that passage is the true source."""
        if not unsupported_figures(turn.draft, " ".join(_evidence(p) for p in cited)):
            return cited
        for passage in turn.passages:
            if passage not in cited and not unsupported_figures(turn.draft, _evidence(passage)):
                turn.cited_labels = [passage.label]
                turn.metrics["citation_relabelled"] = True
                return [passage]
        return cited
