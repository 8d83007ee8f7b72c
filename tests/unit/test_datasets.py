"""The evaluation sets themselves: well formed, strict, grounded in their documents, and test-2 frozen and apart."""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import pytest

from bot.settings import REPO_ROOT
from bot.text import question_key
from eval.dataset import contains, load_cases, matching_form
from eval.strictness import generic_groups
from tests.conftest import DEMO, SHARED

DATASETS = REPO_ROOT / "eval" / "datasets"
TEST = DATASETS / "test2"
SPLITS = {"dev": sorted((DATASETS / "dev").glob("*.jsonl")), "test": sorted(TEST.glob("*.jsonl"))}
# Everything the bot's behaviour is written from: a test question must appear in none of it.
BEHAVIOUR_FILES = [*sorted((REPO_ROOT / "config").rglob("*.yaml")), *sorted((REPO_ROOT / "prompts").rglob("*.yaml"))]
# One case of the frozen split whose writer copied an expected figure and its evidence in a form the stored
# document does not hold (found by this test on 2026-12-07, before any run of the split): kept, since the split
# cannot change, and scored as written.
FROZEN_DEFECTS = {"t2-spC-004"}


def _corpus(path: Path) -> Path:
    return DEMO if path.name.startswith("demo") else SHARED


def _all(split: str):
    return [case for path in SPLITS[split] for case in load_cases(path)]


def test_test2_is_frozen_by_its_hashes():
    sums = dict(reversed(line.split()) for line in (TEST / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert sorted(sums) == sorted(p.name for p in SPLITS["test"])
    for name, digest in sums.items():
        actual = hashlib.sha256((TEST / name).read_bytes()).hexdigest()
        assert actual == digest, f"{name} changed: test-2 is frozen (see eval/datasets/test2/README.md)"


def test_both_splits_exist_load_and_are_large_enough():
    dev, test = _all("dev"), _all("test")
    assert len(dev) >= 400 and sum(c.kind == "refuse" for c in dev) >= 120
    assert len(test) >= 300 and sum(c.kind == "refuse" for c in test) >= 100
    assert sum(c.ordinary for c in test) >= 100
    refusal_outcomes = {o for c in test if c.kind == "refuse" for o in c.outcomes}
    assert len(refusal_outcomes) >= 8  # every way a turn can be refused is tested


@pytest.mark.parametrize("split", ["dev", "test"])
def test_no_expected_content_is_satisfied_by_a_generic_word(split: str):
    """ "oui", "non", "pas", "mairie" or a bare "1" pass an evasive reply: no answer case relies on one."""
    weak = [(c.id, generic_groups(c.must_include)) for c in _all(split) if c.kind == "answer"]
    assert [w for w in weak if w[1]] == []
    assert [c.id for c in _all(split) if c.kind == "answer" and not c.must_include] == []


def _conversation(case) -> str:
    return question_key(" ".join([*case.history, case.question]))


def test_no_test_question_is_also_a_dev_question():
    dev = {_conversation(c) for c in _all("dev")}
    assert [c.id for c in _all("test") if _conversation(c) in dev] == []


@pytest.mark.parametrize("path", BEHAVIOUR_FILES, ids=lambda p: p.name)
def test_no_test_question_is_written_into_what_drives_the_bot(path: Path):
    """Route examples, prompts and thresholds never hold a test question word for word (by meaning: e2e)."""
    text = question_key(path.read_text(encoding="utf-8"))
    leaked = [c.id for c in _all("test") if len(question_key(c.question)) > 12 and question_key(c.question) in text]
    assert leaked == []


@functools.cache
def _document_text(corpus: Path, source: str) -> str:
    from ingestion.loaders import load

    document = load(corpus / source, corpus)
    return " ".join([document.title, document.markdown])


def _squeezed(text: str) -> str:
    return matching_form(text).replace(" ", "")


@pytest.mark.parametrize("split", ["dev", "test"])
def test_every_expected_fact_is_in_the_case_source_document(split: str):
    """An answer case is written from a document: one option of each expected fact is found there, and so is its
    evidence (test-2), spacing aside."""
    wrong = []
    for path in SPLITS[split]:
        corpus = _corpus(path)
        if not corpus.exists():
            pytest.fail(f"{corpus} is missing: the shared corpora sit beside the checkout (../shared/corpora)")
        for case in load_cases(path):
            if case.kind != "answer" or not case.source or case.id in FROZEN_DEFECTS:
                continue
            text = _document_text(corpus, case.source)
            if split == "dev":
                wrong += [f"{case.id}: {must}" for must in case.must_include if not contains(text, must)]
            else:  # the frozen split is checked for grounding, not for the writers' word boundaries
                options = [m if isinstance(m, list) else [m] for m in case.must_include]
                wrong += [f"{case.id}" for o in options if not any(_squeezed(x) in _squeezed(text) for x in o)]
                evidence = str(case.extra.get("evidence", ""))
                wrong += [f"{case.id}: evidence"] if evidence and _squeezed(evidence) not in _squeezed(text) else []
    assert wrong == []


def test_refusals_that_send_the_resident_somewhere_name_a_service_of_the_town():
    from bot.settings import Settings, load_yaml

    services = set(load_yaml(Settings().town_file)["services"])
    routed = ("unanswerable_no_sources", "handoff_individual_decision", "refused_personal_data")
    for split in ("dev", "test"):
        cases = [c for c in _all(split) if c.kind == "refuse" and set(c.outcomes) & set(routed)]
        assert cases and all(c.extra.get("service") in services for c in cases), split


def test_ids_tell_the_split():
    assert all(re.match(r"t2-", c.id) for c in _all("test"))
    assert not any(c.id.startswith("t2-") for c in _all("dev"))
