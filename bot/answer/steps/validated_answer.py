"""ValidatedAnswerLookup: a question staff already validated on this corpus is answered from that answer, whether
it is asked in the same words or, found by meaning, in other words that change nothing."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bot.answer.outcomes import Outcome
from bot.answer.same_question import situation_difference
from bot.answer.textmatch import without_personal_clauses
from bot.answer.turn import Citation, Turn
from bot.answer.validated_answers import ValidatedAnswers
from bot.engines.embedder import Embedder
from bot.engines.index import Index


class ByMeaning:
    """Finds the validated answer whose question another wording means, or nothing.

    Three conditions, all needed: the two questions are close in meaning (cosine of their query vectors at least
    ``min_similarity``, calibrated on the dev split of ``eval/datasets/paraphrases``); nothing that tells
    situations apart differs between them (``bot.answer.same_question``); and retrieval for the new wording lands
    on a document the validated answer cites.
    """

    def __init__(self, embedder: Embedder, index: Index, min_similarity: float, search_depth: int = 2):
        self.embedder, self.index, self.min_similarity, self.search_depth = (
            embedder,
            index,
            min_similarity,
            search_depth,
        )
        self._vectors: dict[tuple[str, str], np.ndarray] = {}  # each validated question's, computed once

    def find(self, turn: Turn, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not entries:
            return None
        query = without_personal_clauses(turn.question)
        turn.query_vector = vector = self.embedder.embed_query(query)  # the retriever reuses it on a miss
        similarities = np.stack([self._vector(e) for e in entries]) @ vector
        best = int(np.argmax(similarities))
        entry, similarity = entries[best], float(similarities[best])
        found = {"question": entry["question"], "similarity": round(similarity, 4)}
        if similarity < self.min_similarity:
            turn.trace["validated_by_meaning"] = found | {"served": False, "why": "not close enough in meaning"}
            return None
        why = situation_difference(turn.question, entry["question"])
        if not why and not self._lands_on_cited(vector, entry):
            why = "retrieval lands on another document"
        turn.trace["validated_by_meaning"] = found | {"served": not why, "why": why}
        return None if why else entry

    def _vector(self, entry: dict[str, Any]) -> np.ndarray:
        key = (entry["key"], entry["corpus_hash"])
        if key not in self._vectors:
            self._vectors[key] = self.embedder.embed_query(entry["question"])
        return self._vectors[key]

    def _lands_on_cited(self, vector: np.ndarray, entry: dict[str, Any]) -> bool:
        if self.index.dense is None or not self.index.chunks:
            return False
        _, ids = self.index.dense.search(vector.astype(np.float32).reshape(1, -1), self.search_depth)
        landed = {self.index.chunks[int(i)].source for i in ids[0] if i >= 0}
        return bool(landed & {c["source"] for c in entry["citations"]})


class ValidatedAnswerLookup:
    """Ends the turn as ``answered`` with the validated answer and its citations, before retrieval.

    Runs after the router (an emergency or an injection is never answered from the cache) and after the
    follow-up rewriter (the standalone question is what was validated).
    """

    def __init__(
        self, answers: ValidatedAnswers, corpus_hash: str, enabled: bool = True, by_meaning: ByMeaning | None = None
    ):
        self.answers, self.corpus_hash, self.enabled, self.by_meaning = answers, corpus_hash, enabled, by_meaning

    def run(self, turn: Turn) -> None:
        if not self.enabled:  # an evaluation tests the pipeline, not the answers staff already approved
            return
        started = time.monotonic()
        found = self.answers.lookup(turn.question, self.corpus_hash)
        if found is None and self.by_meaning is not None:
            served = [e for e in self.answers.entries() if e["corpus_hash"] == self.corpus_hash]
            entry = self.by_meaning.find(turn, served)
            if entry is not None:
                found = entry["answer"], [Citation(**c) for c in entry["citations"]]
        if found is None:
            return
        turn.answer, turn.citations = found
        turn.outcome = Outcome.ANSWERED
        turn.trace["validated_answer"] = {"seconds": round(time.monotonic() - started, 4)}
