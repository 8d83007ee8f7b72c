"""Leaks by meaning: an evaluation question that stands, in other words, in what drives the bot.

A question copied into the route examples, a prompt, the spelling table, the validated answers or the verifier's
training questions is answered from memory, not by the pipeline: its score measures nothing. Exact copies are
caught by ``tests/unit/test_datasets.py``; this finds near ones, by the cosine of their EmbeddingGemma query vectors
(``LEAK_COSINE``), the measure the issue set for it. ``guichet eval leaks`` prints them; the end-to-end tests fail
on any.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.engines.embedder import Embedder
from bot.language.abbreviations import WRITTEN_OUT
from bot.settings import REPO_ROOT, Settings, load_yaml
from eval.dataset import load_cases

LEAK_COSINE = 0.92
EVALUATION_SETS = REPO_ROOT / "eval" / "datasets"
TRAINING_PAIRS = REPO_ROOT / "training" / "data" / "pairs.jsonl.gz"


@dataclass(frozen=True)
class Leak:
    """An evaluation question too close in meaning to a text the bot is driven by."""

    case_id: str
    question: str
    kind: str  # route example, prompt line, spelling entry, validated answer, verifier training question
    text: str
    cosine: float


def evaluation_questions(folder: Path = EVALUATION_SETS) -> list[tuple[str, str]]:
    """(case id, question) of the dev and test splits, earlier turns of a conversation included."""
    found = []
    for split in ("dev", "test2"):
        for path in sorted((folder / split).glob("*.jsonl")):
            for case in load_cases(path):
                found += [(case.id, q) for q in [*case.history, case.question]]
    return found


def driving_texts(settings: Settings, training_pairs: Path = TRAINING_PAIRS) -> list[tuple[str, str]]:
    """(kind, text) of everything the bot's behaviour is written from."""
    texts: list[tuple[str, str]] = []
    examples = load_yaml(settings.route_examples_file).get("labels", {})
    texts += [("route example", str(e)) for items in examples.values() for e in items]
    for prompt in sorted((REPO_ROOT / "prompts").glob("*.yaml")):
        lines = [line.strip(" -") for line in prompt.read_text(encoding="utf-8").splitlines()]
        texts += [("prompt line", line) for line in lines if len(line) > 20 and not line.startswith("#")]
    texts += [("spelling entry", f"{short} {word}") for short, word in WRITTEN_OUT.items()]
    if settings.validated_answers_file.exists():
        for line in settings.validated_answers_file.read_text(encoding="utf-8").splitlines():
            if line.strip() and "question" in (entry := json.loads(line)):
                texts.append(("validated answer", entry["question"]))
    if training_pairs.exists():  # the questions the verifier is trained on, in the forms it is trained on
        rows = gzip.decompress(training_pairs.read_bytes()).decode("utf-8").splitlines()
        pairs = [json.loads(line) for line in rows if line.strip()]
        asked = {pair["a"] for pair in pairs if pair["task"] == "answers"}
        texts += [("verifier training question", q) for q in sorted(asked)]
    return texts


def _vectors(embedder: Embedder, texts: Iterable[str]) -> np.ndarray:
    return embedder.embed_queries(list(texts))


def find_leaks(
    embedder: Embedder, questions: list[tuple[str, str]], texts: list[tuple[str, str]], limit: float = LEAK_COSINE
) -> list[Leak]:
    """Every (evaluation question, driving text) pair at or above ``limit`` in cosine."""
    unique_questions = list(dict.fromkeys(q for _, q in questions))
    unique_texts = list(dict.fromkeys(t for _, t in texts))
    if not unique_questions or not unique_texts:
        return []
    q_vectors = _vectors(embedder, unique_questions)
    t_vectors = _vectors(embedder, unique_texts)
    similarity = q_vectors @ t_vectors.T
    ids_of = {}
    for case_id, question in questions:
        ids_of.setdefault(question, case_id)
    kind_of = {}
    for kind, text in texts:
        kind_of.setdefault(text, kind)
    leaks = []
    for qi, ti in zip(*np.nonzero(similarity >= limit), strict=True):
        question, text = unique_questions[qi], unique_texts[ti]
        leaks.append(Leak(ids_of[question], question, kind_of[text], text, round(float(similarity[qi, ti]), 4)))
    return sorted(leaks, key=lambda leak: -leak.cosine)
