"""The evaluation sets themselves: well formed, grounded in their documents, and the test split kept apart."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from bot.settings import REPO_ROOT
from bot.text import question_key
from eval.dataset import contains, load_cases
from tests.conftest import DEMO, SHARED

DATASETS = REPO_ROOT / "eval" / "datasets"
SPLITS = {split: sorted((DATASETS / split).glob("*.jsonl")) for split in ("dev", "test")}
CORPUS_OF = {"demo.jsonl": DEMO, "shared.jsonl": SHARED}
# Everything the bot's behaviour is written from: a test question must appear in none of it.
BEHAVIOUR_FILES = [*sorted((REPO_ROOT / "config").rglob("*.yaml")), *sorted((REPO_ROOT / "prompts").rglob("*.yaml"))]


def _all(split: str):
    return [case for path in SPLITS[split] for case in load_cases(path)]


def test_both_splits_exist_load_and_are_large_enough():
    dev, test = _all("dev"), _all("test")
    everything = dev + test
    assert len(everything) >= 400
    assert sum(c.kind == "refuse" for c in everything) >= 120
    assert len(test) >= 200 and sum(c.kind == "refuse" for c in test) >= 60
    refusal_outcomes = {o for c in test if c.kind == "refuse" for o in c.outcomes}
    assert len(refusal_outcomes) >= 8  # every way a turn can be refused is tested


def _conversation(case) -> str:
    return question_key(" ".join([*case.history, case.question]))


def test_no_test_question_is_also_a_dev_question():
    dev = {_conversation(c) for c in _all("dev")}
    assert [c.id for c in _all("test") if _conversation(c) in dev] == []


@pytest.mark.parametrize("path", BEHAVIOUR_FILES, ids=lambda p: p.name)
def test_no_test_question_is_written_into_what_drives_the_bot(path: Path):
    """Route examples, prompts and thresholds are written from dev cases and general knowledge, never from test."""
    text = question_key(path.read_text(encoding="utf-8"))
    leaked = [c.id for c in _all("test") if len(question_key(c.question)) > 12 and question_key(c.question) in text]
    assert leaked == []


@functools.cache
def _document_text(corpus: Path, source: str) -> str:
    from ingestion.loaders import load

    document = load(corpus / source, corpus)
    return " ".join([document.title, document.markdown])


@pytest.mark.parametrize("split", ["dev", "test"])
def test_every_expected_fact_is_in_the_case_source_document(split: str):
    """An answer case is written from a document: each expected fact (one option at least) is found there."""
    wrong = []
    for path in SPLITS[split]:
        corpus = CORPUS_OF[path.name]
        if not corpus.exists():
            pytest.fail(f"{corpus} is missing: the shared corpora sit beside the checkout (../shared/corpora)")
        for case in load_cases(path):
            if case.kind != "answer" or not case.source:
                continue
            text = _document_text(corpus, case.source)
            wrong += [f"{case.id}: {must}" for must in case.must_include if not contains(text, must)]
    assert wrong == []


def test_ids_tell_the_split():
    assert all(re.match(r"t-", c.id) for c in _all("test"))
    assert not any(c.id.startswith("t-") for c in _all("dev"))
