import json

import pytest

from eval.dataset import DatasetError, contains, load_cases
from eval.runner import gate
from eval.scoring import score_case, summarise
from tests.conftest import write


@pytest.mark.parametrize(
    "reply, expected, ok",
    [
        ("Le repas coûte 3,69\u00a0€.", "3.69 €", True),
        ("Le repas coûte 3.69 €.", "3,69 €", True),
        ("L’accueil  est OUVERT", "l'accueil est ouvert", True),
        ("25 euros en timbre", ["25 €", "25 euros"], True),
        ("26 €", ["25 €", "25 euros"], False),
    ],
)
def test_matching_rules(reply, expected, ok):
    assert contains(reply, expected) is ok


def test_malformed_lines_are_reported_with_their_number(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"id": "a", "question": "q", "kind": "answer"}\n{"id": "b", oops}\n')
    with pytest.raises(DatasetError, match=r"d.jsonl:2: not valid JSON"):
        load_cases(path)
    path = write(tmp_path / "e.jsonl", '{"id": "a", "question": "q", "kind": "maybe"}\n')
    with pytest.raises(DatasetError, match=r"e.jsonl:1: kind must be"):
        load_cases(path)


def test_unknown_fields_are_kept_and_csv_is_read(tmp_path):
    [case] = load_cases(
        write(
            tmp_path / "d.jsonl",
            json.dumps(
                {"id": "a", "question": "q", "kind": "answer", "must_include": [["x", "y"], "z"], "auteur": "Anne"}
            ),
        )
    )
    assert case.extra == {"auteur": "Anne"} and case.must_include == [["x", "y"], "z"]
    csv_text = 'id,question,kind,category,must_include\nc1,Prix ?,answer,papiers,"[""86 €""]"\n'
    csv_path = write(tmp_path / "d.csv", csv_text)
    assert load_cases(csv_path)[0].must_include == ["86 €"]


def _case(kind, must=()):
    from eval.dataset import Case

    return Case(id="x", question="q", kind=kind, category="c", must_include=list(must))


def test_scoring_answer_refusal_and_invention():
    evidence = {"S1": "Passeport majeur : 86 €"}
    good = {"answer": "Il coûte 86 €.", "outcome": "answered", "citations": [{"quote": "Passeport majeur : 86 €"}]}
    assert score_case(_case("answer", ["86 €"]), good, evidence)["passed"]
    invented = dict(good, answer="Il coûte 86 €, appelez le 01 23 45 67 89.")
    result = score_case(_case("answer", ["86 €"]), invented, evidence)
    assert not result["passed"] and result["invented"] == ["0123456789"]
    refused = {"answer": "Je n'ai pas trouvé.", "outcome": "unanswerable_no_sources", "citations": []}
    assert score_case(_case("refuse"), refused, {})["passed"]
    assert "refused" in score_case(_case("answer", ["86 €"]), refused, {})["why"]


def test_gate_lists_failing_metrics(tmp_path):
    results = [
        {
            "kind": "answer",
            "category": "a",
            "passed": False,
            "answered": True,
            "invented": ["9"],
            "citation_valid": True,
            "latency_s": 1.0,
            "prompt_tokens": 100,
        }
    ]
    summary = summarise(results)
    thresholds = write(tmp_path / "gate.yaml", "gate:\n  min_handled_right: 0.9\n  max_invented_facts: 0\n")
    assert gate(summary, thresholds) == ["handled_right = 0.0 (minimum 0.9)", "invented_facts = 1 (maximum 0)"]
