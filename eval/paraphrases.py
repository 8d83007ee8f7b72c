"""Validated answers found by meaning, measured: paraphrases served, near misses refused, and how fast.

A pairs file (``eval/datasets/paraphrases/{dev,test}.jsonl``) holds ``validated`` (a question staff approved),
``asked`` (another question) and ``same`` (true when ``asked`` is another wording of it, false for a near miss
whose right answer differs). Each distinct validated question is approved on a scratch copy of the validated
answers, citing the document retrieval finds for it, as staff would from the console; then each ``asked``
question goes through the lookup step alone, timed.

A wrong match is any answer served for a near miss, or another question's answer served for a paraphrase.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from contextlib import suppress
from pathlib import Path

from bot.answer.outcomes import EndTurn
from bot.answer.pipeline import Answerer
from bot.answer.steps.passage_retriever import PassageRetriever
from bot.answer.steps.validated_answer import ValidatedAnswerLookup
from bot.answer.turn import Turn
from bot.answer.validated_answers import ValidatedAnswers
from bot.errors import GuichetError


def load_pairs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_pairs(answerer: Answerer, pairs: list[dict]) -> list[dict]:
    """Each pair with what the lookup did: ``served`` (the validated question whose answer came back, or ""),
    ``similarity``, ``why`` (the reason it was not served), ``seconds``."""
    lookup = answerer.step(ValidatedAnswerLookup)
    retriever = answerer.step(PassageRetriever)
    if lookup.by_meaning is None:
        raise GuichetError(
            "validated_answers.min_similarity is not set: answers are found by their exact words only. Set it in a "
            "copy of config/thresholds.yaml (0.80 was measured) and point GUICHET_THRESHOLDS_FILE at the copy."
        )
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        answers = ValidatedAnswers(Path(scratch) / "validated-answers.jsonl")
        for validated in dict.fromkeys(p["validated"] for p in pairs):
            turn = Turn(question=validated)
            with suppress(EndTurn):
                retriever.run(turn)
            top = turn.passages[0]
            citation = {"title": top.title, "source": top.source, "url": top.url, "date": top.date, "quote": top.text}
            answers.add(validated, lookup.corpus_hash, f"Réponse validée : {validated}", [citation], "mesure")
        scratch_lookup = ValidatedAnswerLookup(answers, lookup.corpus_hash, True, lookup.by_meaning)
        for pair in pairs:
            turn = Turn(question=pair["asked"])
            started = time.perf_counter()
            scratch_lookup.run(turn)
            seconds = time.perf_counter() - started
            meaning = turn.trace.get("validated_by_meaning", {})
            served = turn.answer.removeprefix("Réponse validée : ") if turn.outcome else ""
            rows.append(
                pair
                | {
                    "served": served,
                    "similarity": meaning.get("similarity"),
                    "why": meaning.get("why", ""),
                    "seconds": round(seconds, 4),
                }
            )
    return rows


def summarise(rows: list[dict]) -> dict:
    paraphrases = [r for r in rows if r["same"]]
    near_misses = [r for r in rows if not r["same"]]
    right = [r for r in paraphrases if r["served"] == r["validated"]]
    wrong = [r for r in rows if r["served"] and (not r["same"] or r["served"] != r["validated"])]
    served_seconds = sorted(r["seconds"] for r in rows if r["served"])
    return {
        "paraphrases": len(paraphrases),
        "near_misses": len(near_misses),
        "paraphrases_served": round(len(right) / max(len(paraphrases), 1), 4),
        "wrong_matches": len(wrong),
        "served_p50_ms": round(1000 * statistics.median(served_seconds), 1) if served_seconds else None,
        "served_max_ms": round(1000 * served_seconds[-1], 1) if served_seconds else None,
        "lookup_p50_ms": round(1000 * statistics.median(r["seconds"] for r in rows), 1) if rows else None,
    }
