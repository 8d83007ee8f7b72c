"""PassageRetriever: hybrid search, then the "do we have a source for this?" decision, outside the model."""

from __future__ import annotations

import re
import time
from typing import Any

from bot.answer.extracts import GOES_ON
from bot.answer.outcomes import EndTurn, Outcome
from bot.answer.textmatch import without_personal_clauses
from bot.answer.turn import Passage, Turn
from bot.engines.chunk import Chunk
from bot.engines.embedder import Embedder
from bot.engines.index import Hit, Index

RANKING_DEPTH = 10
# A passage cut inside a list or a sentence is read from the opening it continues, at most this many lines back.
MAX_OPENING_LINES = 8
MAX_OPENING_CHARS = 400  # a passage is not doubled by a long table row or paragraph before it


def _bare(line: str) -> str:
    return line.strip().lstrip("-•").strip()


def goes_on(line: str) -> bool:
    """True when a line cannot open a text: it continues a sentence (lower case) or a list item joined to the one
    before it ("- ou au …", as ``made_whole`` reads it)."""
    bare = _bare(line)
    return bare[:1].islower() or bool(GOES_ON.match(bare))


def with_its_opening(text: str, before: str) -> str:
    r"""``text`` read from where its sentence or list begins, when it starts in the middle of one.

    Chunks are cut at a size, sometimes inside a list ("- ou au tribunal …" without "Pour donner procuration,
    l'électeur doit se présenter :" and the items before it). The lines of the chunk ``before`` back to the
    opening they continue (a lead-in or the start of a sentence) are put in front; lines the two chunks share
    (they overlap) are not repeated. Text that opens by itself, or whose opening is too far back, is unchanged.

    >>> before = "Tarifs :\nIl faut se présenter :\n- au commissariat,\n- ou à la gendarmerie\n-"
    >>> with_its_opening("ou à la gendarmerie\n- ou au tribunal", before)
    'Il faut se présenter :\n- au commissariat,\n- ou à la gendarmerie\n- ou au tribunal'
    >>> with_its_opening("Le tarif est de 5 €.", before)
    'Le tarif est de 5 €.'
    """
    lines = [line for line in text.splitlines() if _bare(line)]
    if not lines or not goes_on(lines[0]):
        return text
    earlier = [line for line in before.splitlines() if _bare(line)]
    bullet, shared_lines = "", {_bare(line) for line in lines[:2]}
    while earlier and _bare(earlier[-1]) in shared_lines:  # the overlap
        shared = earlier.pop().strip()
        bullet = "- " if shared[:1] in "-•" and _bare(shared) == _bare(lines[0]) else bullet
    for back in range(1, min(MAX_OPENING_LINES, len(earlier)) + 1):
        if sum(len(line) for line in earlier[-back:]) > MAX_OPENING_CHARS:
            break
        if not goes_on(earlier[-back]):
            first = text.lstrip()
            first = first if first[:1] in "-•" else bullet + first  # the item keeps the bullet the cut took off
            return "\n".join([*(line.rstrip() for line in earlier[-back:]), first])
    return text


class PassageRetriever:
    """Puts the best passages on the turn, or ends it when the question is clearly about nothing in the corpus.

    Whether the passages *answer* is the verifier's decision (``EvidenceFinder``); retrieval only ends a turn whose
    best passage is below ``min_dense`` in cosine (``config/thresholds.yaml``), a floor under which nothing on the
    topic was ever found on the evaluation sets.
    """

    def __init__(self, embedder: Embedder, index: Index, thresholds: dict[str, Any]):
        self.embedder, self.index, self.thresholds = embedder, index, thresholds
        self.candidates = int(thresholds["candidates"])
        self.lexical_weight = float(thresholds["lexical_weight"])
        self.passages = int(thresholds["passages"])
        self.min_dense = float(thresholds["min_dense"])
        self.demotions = [
            (re.compile(d["heading"], re.I), re.compile(d["unless_question"], re.I), float(d["penalty"]))
            for d in thresholds.get("demote_headings", [])
        ]

    def run(self, turn: Turn) -> None:
        started = time.monotonic()
        query = without_personal_clauses(turn.question)  # masked personal data is noise to the search
        vector = turn.query_vector if turn.query_vector is not None else self.embedder.embed_query(query)
        turn.query_vector = vector  # the services' choice reuses it if the turn ends without an answer
        ranking = self.index.search(
            vector,
            query,
            k=max(self.passages, RANKING_DEPTH),
            pool=self.candidates,
            lexical_weight=self.lexical_weight,
        )
        ranking = self._demote(turn.question, ranking)
        hits = ranking[: self.passages]
        turn.passages = [
            Passage.from_chunk(h.chunk, f"S{n}", self._read_from_its_opening(h.chunk), h.dense, h.lexical)
            for n, h in enumerate(hits, 1)
        ]
        top_dense = max((p.dense_score for p in turn.passages), default=0.0)
        turn.trace["retrieval"] = {
            "seconds": round(time.monotonic() - started, 4),
            "top_dense": top_dense,
            "sources": [p.source for p in turn.passages],
            "scores": [p.dense_score for p in turn.passages],
            # deeper ranking, for retrieval diagnostics (hit@k, MRR) only
            "ranking": [h.chunk.source for h in ranking],
            "ranking_scores": [round(h.fused, 5) for h in ranking],
        }
        if top_dense < self.min_dense:
            raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, f"retrieval below threshold (dense {top_dense:.2f})")

    def _read_from_its_opening(self, chunk: Chunk) -> str:
        before = self.index.preceding(chunk)
        return with_its_opening(chunk.text, before.text) if before else chunk.text

    def _demote(self, question: str, ranking: list[Hit]) -> list[Hit]:
        """Lower passages whose heading path names a situation the question does not mention (a resident
        of the town asks about France, not about the procedure abroad, unless they say so)."""
        for hit in ranking:
            path = " > ".join(hit.chunk.headings)
            for heading, unless, penalty in self.demotions:
                if heading.search(path) and not unless.search(question):
                    hit.fused -= penalty
        return sorted(ranking, key=lambda h: h.fused, reverse=True)
