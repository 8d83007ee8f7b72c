"""Validated answers: approved by staff from an evaluation run, served while the corpus is unchanged."""

import json

import pytest

from bot.answer.steps.answer_composer import AnswerComposer
from bot.answer.validated_answers import ValidatedAnswers, answer_key
from bot.errors import GuichetError
from bot.settings import REPO_ROOT
from eval.dataset import load_cases
from eval.runner import InProcess, run
from eval.validate import validate_run
from tests.conftest import fake_answerer, write

REPO_TEST_SPLIT = REPO_ROOT / "eval" / "datasets" / "test2"
REPLY = json.dumps({"source": "S1", "reponse": "Le passeport d'un majeur coûte 86 €."})
CASES = """\
{"id": "p1", "question": "Quel est le prix du passeport majeur ?", "kind": "answer", "must_include": ["86 €"]}
{"id": "r1", "question": "Quelle est la météo demain ?", "kind": "refuse", "outcome": "refused_out_of_scope"}
"""


@pytest.fixture
def evaluated(fake_demo_index, tmp_path):
    answerer = fake_answerer(fake_demo_index, REPLY, tmp_path)
    run(InProcess(answerer), load_cases(write(tmp_path / "cases.jsonl", CASES)), tmp_path / "run")
    return answerer, tmp_path / "run"


def test_a_validated_answer_is_served_without_the_model(fake_demo_index, evaluated, tmp_path):
    answerer, run_dir = evaluated
    answers = ValidatedAnswers(tmp_path / "validated-answers.jsonl")
    assert validate_run(run_dir, answers, ["p1"], all_passed=False, by="Mme Martin") == ["p1"]
    assert validate_run(run_dir, answers, ["p1"], all_passed=False, by="Mme Martin") == []  # already there

    fresh = fake_answerer(fake_demo_index, REPLY, tmp_path)  # reads the file again, as a restarted server would
    model = fresh.step(AnswerComposer).model
    turn = fresh.answer("quel est le PRIX du passeport majeur")
    assert turn.trace["validated_answer"] and turn.outcome == "answered" and model.calls == []
    assert "86 €" in turn.answer and turn.citations[0].source == "carte-identite-passeport.html"
    assert fresh.answer("Et quel est le prix du passeport majeur ? Pour ma fille").trace.get("validated_answer") is None


def test_a_validated_answer_from_old_sources_says_their_year_once(fake_demo_index, tmp_path):
    from datetime import date

    answerer = fake_answerer(fake_demo_index, REPLY, tmp_path)
    answerer.today = lambda: date(2028, 1, 1)  # the passport page is then over a year old
    run(InProcess(answerer), load_cases(write(tmp_path / "cases.jsonl", CASES)), tmp_path / "run")
    answers = ValidatedAnswers(tmp_path / "validated-answers.jsonl")
    assert validate_run(tmp_path / "run", answers, ["p1"], all_passed=False, by="Mme Martin") == ["p1"]
    fresh = fake_answerer(fake_demo_index, REPLY, tmp_path)
    fresh.today = answerer.today
    turn = fresh.answer("quel est le PRIX du passeport majeur")
    assert turn.trace["validated_answer"] and turn.answer.count("D'après un document de 2026") == 1


def test_an_evaluation_tests_the_pipeline_unless_asked_for_validated_answers(fake_demo_index, evaluated, tmp_path):
    _, run_dir = evaluated
    validate_run(run_dir, ValidatedAnswers(tmp_path / "validated-answers.jsonl"), ["p1"], all_passed=False, by="a")
    cases = load_cases(tmp_path / "cases.jsonl")
    for serve, served in ((False, 0), (True, 1)):
        answerer = fake_answerer(fake_demo_index, REPLY, tmp_path, serve_validated_answers=serve)
        summary = run(InProcess(answerer), cases, tmp_path / f"run-{serve}")
        assert summary["validated_answers_served"] == served
        assert (answerer.step(AnswerComposer).model.calls == []) is serve


def test_a_changed_corpus_stops_serving_the_validated_answer(evaluated, tmp_path):
    _, run_dir = evaluated
    answers = ValidatedAnswers(tmp_path / "validated-answers.jsonl")
    validate_run(run_dir, answers, [], all_passed=True, by="staff")
    corpus_hash = json.loads((run_dir / "summary.json").read_text())["run"]["index"]["corpus_hash"]
    assert answers.lookup("Quel est le prix du passeport majeur ?", corpus_hash)
    assert answers.lookup("Quel est le prix du passeport majeur ?", "another-corpus") is None


def test_only_answers_can_be_validated(evaluated, tmp_path):
    _, run_dir = evaluated
    answers = ValidatedAnswers(tmp_path / "validated-answers.jsonl")
    with pytest.raises(GuichetError, match="not answered"):
        validate_run(run_dir, answers, ["r1"], all_passed=False, by="staff")
    with pytest.raises(GuichetError, match="No case zz"):
        validate_run(run_dir, answers, ["zz"], all_passed=False, by="staff")
    assert len(answers) == 0


def test_a_question_of_the_held_out_test_split_is_never_validated(tmp_path):
    from eval.validate import held_out_questions

    test_case = next(iter(load_cases(REPO_TEST_SPLIT / "demo.jsonl")))
    assert answer_key(test_case.question) in held_out_questions()
    run_dir = tmp_path / "run-t"
    citation = {"title": "t", "source": "s", "url": "", "date": "", "quote": "q"}
    result = {"id": "t1", "question": test_case.question, "outcome": "answered", "passed": True}
    write(run_dir / "results.jsonl", json.dumps(result | {"answer": "a", "citations": [citation]}) + "\n")
    write(run_dir / "summary.json", json.dumps({"run": {"index": {"corpus_hash": "h"}}}))
    answers = ValidatedAnswers(tmp_path / "validated-answers.jsonl")
    with pytest.raises(GuichetError, match="held-out test split"):
        validate_run(run_dir, answers, ["t1"], all_passed=False, by="staff")
    assert validate_run(run_dir, answers, [], all_passed=True, by="staff") == [] and len(answers) == 0


def test_an_answer_approved_as_typed_with_abbreviations_is_served_to_the_same_message(fake_demo_index, tmp_path):
    cases = '{"id": "p1", "question": "cb coute le passeport majeur ?", "kind": "answer", "must_include": ["86 €"]}\n'
    answerer = fake_answerer(fake_demo_index, REPLY, tmp_path)
    run(InProcess(answerer), load_cases(write(tmp_path / "sms.jsonl", cases)), tmp_path / "sms-run")
    answers = ValidatedAnswers(tmp_path / "validated-answers.jsonl")
    assert validate_run(tmp_path / "sms-run", answers, ["p1"], all_passed=False, by="Mme Martin") == ["p1"]
    fresh = fake_answerer(fake_demo_index, REPLY, tmp_path)
    # the input guard writes "cb" out as "combien" before the lookup: the key must be the same
    assert fresh.answer("cb coute le passeport majeur ?").trace.get("validated_answer")


def test_two_workers_share_approvals_and_revocations_through_the_file(tmp_path):
    path = tmp_path / "validated-answers.jsonl"
    first, second = ValidatedAnswers(path), ValidatedAnswers(path)  # two workers' copies
    citation = {"title": "T", "source": "s.md", "url": "", "date": "", "quote": "86 €"}
    assert first.add("Prix du passeport majeur ?", "h1", "86 €.", [citation], "claire")
    assert second.lookup("prix du passeport majeur", "h1") is not None
    entry = second.entries()[0]
    assert entry["validated_by"] == "claire" and entry["validated_at"]
    assert second.revoke(entry["key"], "h1", "marc") and not second.revoke(entry["key"], "h1", "marc")
    assert first.lookup("prix du passeport majeur", "h1") is None and len(first) == 0
    assert "revoked_by" in path.read_text().splitlines()[-1]  # the history stays in the file
    assert len(ValidatedAnswers(path)) == 0  # a worker starting later reads the revocation too
