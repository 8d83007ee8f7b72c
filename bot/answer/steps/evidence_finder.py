"""EvidenceFinder: which sentences of the passages answer the question, decided by the trained verifier.

Retrieval finds passages on the topic; whether one of their sentences *answers* is another question, and the one
where hand-written rules failed (a sentence on the right topic that says something else, a resident's words that
are not the document's). The verifier reads the question with each sentence or table row and gives the probability
that it answers. None at or above the threshold: the documents do not hold the answer, and the turn ends as
``unanswerable_no_sources`` before the model writes anything. Otherwise the sentences that answer, from the best
one's document, become the turn's evidence, and the passages holding them are the ones the composer is shown.
"""

from __future__ import annotations

import time

from bot.answer.candidates import Candidate, candidates, evidence_of
from bot.answer.claims import rows_for_the_situation
from bot.answer.neutraliser import Neutraliser
from bot.answer.outcomes import EndTurn, Outcome
from bot.answer.turn import Passage, Turn
from bot.engines.verifier import Verifier

MAX_EVIDENCE = 3  # sentences kept as evidence: a rule, its condition, its exception


class EvidenceFinder:
    """Scores every candidate sentence of ``turn.passages`` with the verifier, ends the turn when none answers,
    keeps the answering ones as ``turn.evidence`` and the passages that hold them (at most ``shown``) as
    ``turn.passages``, relabelled S1…Sn."""

    def __init__(
        self,
        verifier: Verifier,
        threshold: float,
        shown: int = 2,
        max_candidates: int = 40,
        neutralise: Neutraliser | None = None,
    ):
        self.verifier, self.threshold, self.shown, self.max_candidates = verifier, threshold, shown, max_candidates
        self.neutralise = neutralise  # a sentence that reads like an order to an AI is never evidence

    def run(self, turn: Turn) -> None:
        started = time.monotonic()
        found = [c for c in candidates(turn.passages) if not (self.neutralise and self.neutralise.instructs(c.text))]
        found = found[: self.max_candidates]
        scores = [float(s) for s in self.verifier.answers(turn.question, [c.reading for c in found])]
        ranked = sorted(zip(found, scores, strict=True), key=lambda pair: pair[1], reverse=True)
        turn.trace["evidence"] = {
            "seconds": round(time.monotonic() - started, 4),
            "candidates": len(found),
            "top_score": round(ranked[0][1], 4) if ranked else 0.0,
            "threshold": self.threshold,
            "best": [(c.source, c.text[:160], round(s, 4)) for c, s in ranked[:5]],
        }
        if not ranked or ranked[0][1] < self.threshold:
            raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, "no sentence of the passages answers (verifier)")
        best_document = ranked[0][0].source
        kept = [(c, s) for c, s in ranked if s >= self.threshold and c.source == best_document][:MAX_EVIDENCE]
        kept = self._of_the_situation(turn, ranked, kept, best_document)
        turn.evidence = [evidence_of(c, s) for c, s in kept]
        turn.passages = self._shown(turn.passages, [c for c, _ in kept])

    @staticmethod
    def _of_the_situation(
        turn: Turn, ranked: list[tuple[Candidate, float]], kept: list[tuple[Candidate, float]], document: str
    ) -> list[tuple[Candidate, float]]:
        """When the question states the resident's situation as a quantity ("16 ans", "tranche 2", "30 ans") and
        the best document has rows for it, the evidence rows are those rows (a rule of form on quantities and
        ranges: a small cross-encoder reads "16" inside "de 15 à 17 ans" unreliably)."""
        rows = {r for p in turn.passages if p.source == document for r in rows_for_the_situation(turn.question, p.text)}
        situation = [(c, s) for c, s in ranked if c.source == document and c.text in rows]
        if not situation or not any(c.unit.is_row for c, _ in kept):
            return kept
        return [*situation[:MAX_EVIDENCE], *((c, s) for c, s in kept if not c.unit.is_row)][:MAX_EVIDENCE]

    def _shown(self, passages: list[Passage], kept: list[Candidate]) -> list[Passage]:
        """The passages holding evidence first (best first), then the others in rank order; ``shown`` of them,
        relabelled S1…Sn."""
        holding = list(dict.fromkeys(c.chunk_id for c in kept))
        order = sorted(passages, key=lambda p: holding.index(p.chunk_id) if p.chunk_id in holding else len(holding))
        return [
            Passage(**{**p.__dict__, "label": f"S{n}"})  # a new label, the same passage
            for n, p in enumerate(order[: max(self.shown, len(holding))], 1)
        ]
