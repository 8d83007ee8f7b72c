"""Shared fixtures: the demo corpus, a fake embedder and chat model, and the real models when present."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.engines.embedder import FakeEmbedder
from bot.settings import REPO_ROOT

DEMO = REPO_ROOT / "corpora" / "demo"
SHARED = REPO_ROOT.parent / "shared" / "corpora"


@pytest.fixture(autouse=True, scope="session")
def _state_outside_the_repository(tmp_path_factory):
    """A service a test builds without naming its staff or feedback folder keeps its database (accounts, feedback,
    sets, runs) and its questions left unanswered in temporary ones: a test never leaves state in the repository's
    ``var/``, nor in a database server the shell names."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GUICHET_STAFF_DIR", str(tmp_path_factory.mktemp("default-staff")))
        patch.setenv("GUICHET_FEEDBACK_DIR", str(tmp_path_factory.mktemp("default-feedback")))
        patch.delenv("GUICHET_DATABASE_URL", raising=False)
        yield


@pytest.fixture
def demo_corpus() -> Path:
    return DEMO


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


FAKE_THRESHOLDS = """\
version: test
retrieval: {candidates: 20, lexical_weight: 0.05, passages: 2, min_dense: 0.0}
evidence: {min_probability: 0.3, passages_shown: 2}
guard: {checks: [figures_in_evidence, row_of_the_situation]}
answer: {max_tokens: 100}
"""


@pytest.fixture(scope="session")
def fake_demo_index(tmp_path_factory):
    """The demo corpus indexed with the fake embedder."""
    from bot.engines.index import Index
    from ingestion.builder import build

    path = tmp_path_factory.mktemp("fake-demo-index")
    build([DEMO], path, FakeEmbedder())
    return Index.open(path)


# What the fake route classifier recognises (the real one is measured end to end on the evaluation sets).
FAKE_ROUTES = {
    "où en est": "handoff_individual_decision",
    "météo": "refused_out_of_scope",
    "quel temps": "refused_out_of_scope",
    "ignore tes instructions": "guardrail_injection",
}


FAKE_TODAY = date(2026, 12, 1)  # every demo document is then under a year old (the oldest: 2025-12-05)


def fake_answerer(index, reply: str, workdir: Path, **settings_overrides):
    """The real answer steps over ``index`` with the fake embedder, route classifier and verifier (word overlap),
    and a model that always says ``reply``."""
    from bot.answer.pipeline import Answerer
    from bot.answer.route_classifier import FakeRouteClassifier
    from bot.engines.llm import FakeChatModel
    from bot.engines.verifier import FakeVerifier
    from bot.settings import Settings

    thresholds = write(workdir / "thresholds.yaml", FAKE_THRESHOLDS)
    settings = Settings(
        thresholds_file=thresholds, validated_answers_file=workdir / "validated-answers.jsonl", **settings_overrides
    )
    answerer = Answerer.build(
        settings, FakeEmbedder(), FakeChatModel(reply), index, FakeRouteClassifier(FAKE_ROUTES), FakeVerifier()
    )
    answerer.today = lambda: FAKE_TODAY  # the demo documents' ages do not change as the calendar does
    return answerer


def write(path: Path, text: str | bytes) -> Path:
    """Create a file (and its folders) for a test corpus."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def routes_neutraliser():
    """The document neutraliser built from the shipped routes file, as the pipeline builds it."""
    from bot.answer.neutraliser import Neutraliser
    from bot.answer.steps.question_router import load_patterns
    from bot.settings import Settings

    return Neutraliser.from_routes(load_patterns(Settings().routes_file)[0])
