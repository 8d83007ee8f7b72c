"""The verifier measured where it is used: on the dev split's questions, through the real retriever.

Its own report (``training.report``) is on held-out pairs of its training data; this one asks the question that
decides the gate's threshold: for the dev questions, does the best sentence answer and pass, and do the questions
the documents do not answer stay under it? Dev only: the threshold is chosen here, never on test.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bot.engines.verifier import Verifier
from training.pairs import Pair
from training.report import answers_scores, auc


def dev_pairs(retriever: Any, cases: list[Any]) -> list[Pair]:
    """Pairs from an evaluation split's cases, through the real retriever: each candidate sentence of the passages
    retrieved for a question, labelled 1 when it holds every expected fact of an answer case (one option of each
    group), 0 otherwise, and 0 for every sentence retrieved for a question the documents do not answer. For
    measuring the verifier where it is used (choosing the threshold on dev), never for training it."""
    from bot.answer.candidates import candidates
    from bot.answer.outcomes import EndTurn
    from bot.answer.turn import Turn
    from eval.dataset import contains

    pairs = []
    for case in cases:
        if case.kind == "refuse" and "unanswerable_no_sources" not in case.outcomes:
            continue  # routed before retrieval: the verifier never sees it
        turn = Turn(question=case.question)
        try:
            retriever.run(turn)
        except EndTurn:
            continue
        for candidate in candidates(turn.passages):
            text = f"{candidate.lead_in} {candidate.text}"
            answers = case.kind == "answer" and all(contains(text, m) for m in case.must_include)
            kind = "dev_answer" if case.kind == "answer" else "dev_no_source"
            pairs.append(Pair("answers", turn.question, candidate.reading, int(answers), kind, (case.id,), "", "dev"))
    return pairs


def dev_report(verifier: Verifier, pairs: list[Pair], thresholds: list[float]) -> dict[str, Any]:
    """On dev pairs: AUC, and for each threshold how many answer cases keep an answering sentence at or above it
    and how many no-source cases keep none (the gate's two errors)."""
    scores = answers_scores(verifier, pairs)
    by_case: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    for pair, score in zip(pairs, scores, strict=True):
        by_case[pair.sources[0]].append((score, pair.label, pair.kind))
    out: dict[str, Any] = {"pairs": len(pairs), "auc": auc([p.label for p in pairs], scores), "thresholds": {}}
    for t in thresholds:
        answered = [c for c in by_case.values() if c[0][2] == "dev_answer" and any(lb for _, lb, _ in c)]
        unanswered = [c for c in by_case.values() if c[0][2] == "dev_no_source"]
        top_is_right = sum(1 for c in answered if max(c)[1] == 1 and max(c)[0] >= t)
        out["thresholds"][t] = {
            "answer_cases_with_an_answering_sentence": len(answered),
            "best_sentence_answers_and_passes": top_is_right,
            "no_source_cases": len(unanswered),
            "no_source_cases_stopped": sum(1 for c in unanswered if max(s for s, _, _ in c) < t),
        }
    return out
