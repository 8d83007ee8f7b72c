"""The verifier alone, on the valid side of its pairs (no document on both sides): AUC, accuracy at the operating
point, and accuracy by the kind of pair, so a weakness shows where it is (another case, a negation, …)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from bot.engines.verifier import SUPPORT_LABELS, Verifier
from training.pairs import Pair


def auc(labels: list[int], scores: list[float]) -> float | None:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(labels, scores)), 4) if len(set(labels)) == 2 else None


def answers_scores(verifier: Verifier, pairs: list[Pair]) -> list[float]:
    """P(answers) of each pair, one question at a time with all its sentences (as the answer path asks)."""
    by_question: dict[str, list[int]] = defaultdict(list)
    for n, pair in enumerate(pairs):
        by_question[pair.a].append(n)
    scores = [0.0] * len(pairs)
    for question, numbers in by_question.items():
        for n, p in zip(numbers, verifier.answers(question, [pairs[n].b for n in numbers]), strict=True):
            scores[n] = float(p)
    return scores


def report(verifier: Verifier, pairs: list[Pair], threshold: float = 0.5, split: str = "valid") -> dict[str, Any]:
    """Figures on the ``split`` side: answers (AUC, accuracy at ``threshold``, by kind), supports (accuracy, by
    kind, and how often a contradiction is taken as entailed)."""
    answers = [p for p in pairs if p.split == split and p.task == "answers"]
    supports = [p for p in pairs if p.split == split and p.task == "supports"]
    out: dict[str, Any] = {"split": split, "threshold": threshold}
    if answers:
        scores = answers_scores(verifier, answers)
        labels = [p.label for p in answers]
        right = [(s >= threshold) == bool(lb) for s, lb in zip(scores, labels, strict=True)]
        by_kind: dict[str, list[bool]] = defaultdict(list)
        for pair, ok in zip(answers, right, strict=True):
            by_kind[pair.kind].append(ok)
        by_register: dict[str, list[bool]] = defaultdict(list)
        for pair, ok in zip(answers, right, strict=True):
            if pair.label == 1:
                by_register[pair.register].append(ok)
        out["answers"] = {
            "pairs": len(answers),
            "positives": sum(labels),
            "auc": auc(labels, scores),
            "accuracy": round(float(np.mean(right)), 4),
            "balanced_accuracy": round(
                float(
                    np.mean([np.mean([ok for ok, lb in zip(right, labels, strict=True) if lb == v]) for v in (0, 1)])
                ),
                4,
            ),
            "by_kind": {
                k: {"pairs": len(v), "accuracy": round(float(np.mean(v)), 4)} for k, v in sorted(by_kind.items())
            },
            "positives_by_register": {
                k: {"pairs": len(v), "accuracy": round(float(np.mean(v)), 4)} for k, v in sorted(by_register.items())
            },
        }
    if supports:
        probabilities = verifier.supports([(p.a, p.b) for p in supports])
        predicted = probabilities.argmax(1)
        by_kind_s: dict[str, list[bool]] = defaultdict(list)
        for pair, guess in zip(supports, predicted, strict=True):
            by_kind_s[pair.kind].append(int(guess) == pair.label)
        contradicted = [g for p, g in zip(supports, predicted, strict=True) if p.label == 1]
        out["supports"] = {
            "pairs": len(supports),
            "accuracy": round(float(np.mean([int(g) == p.label for p, g in zip(supports, predicted, strict=True)])), 4),
            "contradiction_taken_as_entailed": round(float(np.mean([g == 0 for g in contradicted])), 4)
            if contradicted
            else None,
            "by_kind": {
                k: {"pairs": len(v), "accuracy": round(float(np.mean(v)), 4)} for k, v in sorted(by_kind_s.items())
            },
            "labels": list(SUPPORT_LABELS),
        }
    return out
