"""The questions the documents don't answer, grouped by meaning for staff: the list a town most needs to improve
its information.

The questions are read with the embedder the service already runs and grouped by agglomerative clustering
(average linkage over cosine distances) cut at a distance, so the number of groups is not fixed in advance: a
question far from every other one is a group of its own. ``gaps.max_distance`` (``config/thresholds.yaml``) was
chosen on the dev split's unanswerable questions (``guichet eval gaps``; docs/gaps.md).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from bot.engines.embedder import Embedder
from bot.timestamps import week_starts

EXAMPLES = 3


def groups_by_meaning(vectors: np.ndarray, max_distance: float) -> list[list[int]]:
    """The rows of ``vectors`` (unit length) grouped: the largest group first, each group's members by closeness
    to its centre.

    >>> groups_by_meaning(np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0]]), 0.2)
    [[0, 1], [2]]
    """
    if len(vectors) == 0:
        return []
    if len(vectors) == 1:
        return [[0]]
    from sklearn.cluster import AgglomerativeClustering

    labels = AgglomerativeClustering(
        n_clusters=None, distance_threshold=max_distance, metric="cosine", linkage="average"
    ).fit_predict(vectors)
    groups = []
    for label in set(labels.tolist()):
        members = [n for n, found in enumerate(labels) if found == label]
        centre = vectors[members].mean(axis=0)
        members.sort(key=lambda n: -float(vectors[n] @ centre))
        groups.append(members)
    return sorted(groups, key=lambda g: (-len(g), g[0]))


@dataclass
class Gap:
    """A group of questions the documents did not answer."""

    label: str  # the question closest to the group's centre
    count: int
    examples: list[str]
    weeks: list[int]  # questions per week, oldest first, the current week last
    documents: list[tuple[str, int]] = field(default_factory=list)  # closest documents' titles, how often
    outcomes: dict[str, int] = field(default_factory=dict)


class QuestionVectors:
    """The embedder's vectors of questions, kept between page loads (the same questions come back each time)."""

    def __init__(self, embedder: Embedder, max_entries: int = 20_000):
        self.embedder, self.max_entries = embedder, max_entries
        self._known: dict[str, np.ndarray] = {}

    def __call__(self, questions: list[str]) -> np.ndarray:
        new = [q for q in dict.fromkeys(questions) if q not in self._known]
        if new:
            for question, vector in zip(new, self.embedder.embed_queries(new), strict=True):
                self._known[question] = np.asarray(vector, dtype=np.float32)
            while len(self._known) > self.max_entries:
                self._known.pop(next(iter(self._known)))
        if not questions:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([self._known[q] for q in questions])  # unit length, as every embedder gives them


def gap_overview(
    records: list[dict[str, Any]],
    vectors: QuestionVectors,
    max_distance: float,
    weeks: int = 12,
    today: date | None = None,
) -> list[Gap]:
    """The records (``GapStore`` and the feedback's complaints, each with a ``question`` and a ``day``) grouped,
    the groups that affect the most residents first, each with its count for each of the last ``weeks`` weeks."""
    records = [r for r in records if str(r.get("question", "")).strip()]
    if not records:
        return []
    first_week = week_starts(today or date.today(), weeks)[0]
    questions = [str(r["question"]) for r in records]
    gaps = []
    for members in groups_by_meaning(vectors(questions), max_distance):
        per_week = [0] * weeks
        documents: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        for n in members:
            record = records[n]
            week = (date.fromisoformat(record["day"]) - first_week).days // 7
            if 0 <= week < weeks:
                per_week[week] += 1
            documents.update(d.get("title") or d.get("source", "") for d in record.get("documents") or [])
            outcomes[record.get("outcome") or "avis"] += 1
        examples = list(dict.fromkeys(questions[n] for n in members))[:EXAMPLES]
        gaps.append(
            Gap(
                label=examples[0],
                count=len(members),
                examples=examples,
                weeks=per_week,
                documents=documents.most_common(3),
                outcomes=dict(outcomes),
            )
        )
    return gaps
