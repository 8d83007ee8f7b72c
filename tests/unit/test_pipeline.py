"""The whole answer path with fakes: what the resident gets for each way a turn can end."""

import json

import pytest

from bot.embedder import FakeEmbedder
from bot.index import Index
from bot.llm import FakeChatModel
from bot.outcomes import Outcome
from bot.pipeline import ANSWER_STEPS, Answerer
from bot.settings import Settings
from ingestion.builder import build
from tests.conftest import DEMO


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    path = tmp_path_factory.mktemp("index")
    build([DEMO], path, FakeEmbedder())
    return Index.open(path)


def answerer(index, reply, tmp_path):
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text(
        "version: test\nretrieval: {candidates: 20, passages: 2, min_dense: 0.0, "
        "min_coverage: 0.5}\nanswer: {max_tokens: 100}\n"
    )
    return Answerer.build(Settings(thresholds_file=thresholds), FakeEmbedder(), FakeChatModel(reply), index)


def test_steps_read_like_a_table_of_contents():
    assert [s.__name__ for s in ANSWER_STEPS] == ["InputGuard", "PassageRetriever", "AnswerComposer", "OutputGuard"]


def test_answer_with_citation(index, tmp_path):
    reply = json.dumps({"source": "S1", "reponse": "Le passeport d'un majeur coûte 86 €."})
    result = answerer(index, reply, tmp_path).answer("prix du passeport pour un majeur").to_json()
    assert result["outcome"] == "answered"
    assert result["answer"] == "Le passeport d'un majeur coûte 86 €."
    [citation] = result["citations"]
    assert set(citation) == {"title", "source", "url", "date", "quote"}
    assert citation["source"] == "carte-identite-passeport.html" and "86 €" in citation["quote"]
    assert {"retrieval", "llm", "seconds"} <= set(result["metrics"])


def test_no_sources_routes_the_resident(index, tmp_path):
    turn = answerer(index, "{}", tmp_path).answer("horaires de la piscine municipale")
    assert turn.outcome is Outcome.UNANSWERABLE_NO_SOURCES
    assert "01 99 00 12 34" in turn.answer and turn.citations == []


def test_invented_figure_falls_back_to_the_quote(index, tmp_path):
    reply = json.dumps({"source": "S1", "reponse": "Le passeport coûte 99 €."})
    turn = answerer(index, reply, tmp_path).answer("prix du passeport pour un majeur")
    assert turn.outcome is Outcome.ANSWERED_FROM_QUOTE
    assert turn.answer.startswith("Voici ce qu'indique le document officiel : « ") and "99" not in turn.answer
