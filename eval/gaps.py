"""How well the gap report's groups match the topics a person names (``guichet eval gaps``).

The questions are a dev split's unanswerable ones, each under a topic in ``eval/datasets/dev/gap-topics.yaml``.
For each cut distance: pairwise precision (of the pairs put in one group, the share a person put under one topic),
pairwise recall (of the pairs under one topic, the share in one group), and the share of questions whose group a
person agrees with (every member under the question's topic, and every question of that topic in it).
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

from bot.settings import load_yaml
from bot.web.staff.gap_report import QuestionVectors, groups_by_meaning
from eval.dataset import Case


def topic_of(topics_file: Path) -> dict[str, str]:
    """Case id -> the topic it is filed under."""
    return {case_id: topic for topic, ids in load_yaml(topics_file).items() for case_id in ids}


def agreement(groups: list[list[int]], topics: list[str]) -> dict[str, Any]:
    """Pairwise precision and recall of ``groups`` against ``topics`` (one per question), and the share of
    questions whose group is exactly their topic's questions.

    >>> agreement([[0, 1], [2]], ["a", "a", "b"])
    {'groups': 2, 'topics': 2, 'precision': 1.0, 'recall': 1.0, 'agreed': 1.0}
    """
    group_of = {n: g for g, members in enumerate(groups) for n in members}
    together = {(a, b) for a, b in combinations(range(len(topics)), 2) if group_of[a] == group_of[b]}
    same = {(a, b) for a, b in combinations(range(len(topics)), 2) if topics[a] == topics[b]}
    # A group a person agrees with holds one topic's questions, all of them.
    whole = [g for g in groups if {topics[n] for n in g} == {topics[g[0]]} and len(g) == topics.count(topics[g[0]])]
    agreed = sum(len(g) for g in whole)
    return {
        "groups": len(groups),
        "topics": len(set(topics)),
        "precision": round(len(together & same) / len(together), 3) if together else 1.0,
        "recall": round(len(together & same) / len(same), 3) if same else 1.0,
        "agreed": round(agreed / len(topics), 3) if topics else 0.0,
    }


def gap_measure(cases: list[Case], topics: dict[str, str], vectors: QuestionVectors, distances: list[float]):
    """``agreement`` at each cut distance, over the cases that have a topic."""
    kept = [c for c in cases if c.id in topics]
    matrix = vectors([c.question for c in kept])
    labels = [topics[c.id] for c in kept]
    return {d: agreement(groups_by_meaning(matrix, d), labels) for d in distances}
