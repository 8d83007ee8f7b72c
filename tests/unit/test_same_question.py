"""Validated answers found by meaning, with the fake embedder: what makes two wordings the same question, and the
lookup step that serves, refuses and explains (the real embedder on the pairs sets: tests/e2e/)."""

import json

import pytest

from bot.answer.outcomes import Outcome
from bot.answer.same_question import asked_kinds, situation_difference
from bot.answer.steps.validated_answer import ByMeaning, ValidatedAnswerLookup
from bot.answer.turn import Turn
from bot.answer.validated_answers import ValidatedAnswers
from bot.settings import REPO_ROOT
from tests.conftest import FakeEmbedder

VALIDATED = "Combien coûte un passeport pour un majeur ?"


@pytest.mark.parametrize(
    ("asked", "why"),
    [
        ("Quel est le prix d'un passeport pour un adulte ?", ""),
        ("passeport majeur tarif", ""),
        ("Combien faut-il payer pour un passeport quand on est majeur ?", ""),
        ("Combien coûte un passeport pour un mineur ?", "mineur / majeur"),
        ("Combien coûte un passeport ?", "majeur"),  # the situation left open: not the adult's answer
        ("Quel délai pour un passeport pour un majeur ?", "asks for another kind of fact"),
        ("Où faire un passeport pour un majeur ?", "asks for another kind of fact"),
        ("Combien coûte un passeport pour un majeur de 30 ans ?", "other numbers"),
        ("Combien coûte un passeport pour un majeur non résident ?", "a negation in one wording only"),
        ("Combien coûte un passeport perdu pour un majeur ?", "pert"),
    ],
)
def test_two_wordings_are_the_same_question_only_if_nothing_tells_them_apart(asked, why):
    assert situation_difference(asked, VALIDATED) == why


def test_what_a_question_asks_for_is_read_from_its_frame():
    assert asked_kinds("Combien de temps pour un passeport ?") == {"delay"}
    assert asked_kinds("Combien de personnes dans la salle ?") == {"count"}
    assert asked_kinds("Quels papiers fournir ?") == {"documents"}
    assert asked_kinds("La mairie est-elle ouverte le dimanche ?") == {"yes/no"}
    assert asked_kinds("Combien faut-il payer ?") == {"price"}


@pytest.fixture
def lookup(fake_demo_index, tmp_path):
    answers = ValidatedAnswers(tmp_path / "validated-answers.jsonl")
    corpus_hash = fake_demo_index.manifest["corpus_hash"]
    source = next(c for c in fake_demo_index.chunks if "passeport" in c.text.lower())
    citation = {"title": source.title, "source": source.source, "url": "", "date": "", "quote": "86 €"}
    answers.add(VALIDATED, corpus_hash, "Un passeport pour un majeur coûte 86 €.", [citation], "claire")
    meaning = ByMeaning(FakeEmbedder(), fake_demo_index, min_similarity=0.5)
    return ValidatedAnswerLookup(answers, corpus_hash, True, meaning)


def test_a_paraphrase_is_served_the_validated_answer_and_the_trace_says_why(lookup):
    turn = Turn(question="Combien coûte le passeport pour un majeur ?")
    lookup.run(turn)
    assert turn.outcome is Outcome.ANSWERED and "86 €" in turn.answer
    assert turn.trace["validated_by_meaning"]["served"] is True
    assert turn.query_vector is not None  # the retriever reuses it when nothing is served


def test_a_near_miss_goes_through_the_pipeline_with_the_reason(lookup):
    turn = Turn(question="Combien coûte le passeport pour un mineur ?")
    lookup.run(turn)
    assert turn.outcome is None and turn.answer == ""
    assert turn.trace["validated_by_meaning"]["served"] is False
    assert "mineur" in turn.trace["validated_by_meaning"]["why"]


def test_a_wording_far_in_meaning_or_landing_elsewhere_is_not_served(lookup, fake_demo_index):
    far = Turn(question="Quels sont les horaires de la déchetterie ?")
    lookup.run(far)
    assert far.outcome is None and far.trace["validated_by_meaning"]["why"] == "not close enough in meaning"
    elsewhere = ByMeaning(FakeEmbedder(), fake_demo_index, min_similarity=0.5)
    entry = json.loads((lookup.answers.path).read_text().splitlines()[0])
    entry["citations"][0]["source"] = "not-in-the-index.md"
    turn = Turn(question="Combien coûte le passeport pour un majeur ?")
    assert elsewhere.find(turn, [entry]) is None
    assert turn.trace["validated_by_meaning"]["why"] == "retrieval lands on another document"


def test_by_meaning_is_off_unless_a_threshold_is_set():
    from bot.settings import load_yaml

    assert "validated_answers" not in load_yaml(REPO_ROOT / "config" / "thresholds.yaml")
