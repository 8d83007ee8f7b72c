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


DEMO_CASES = """\
{"id": "a1", "question": "prix du passeport pour un majeur", "kind": "answer", "category": "papiers", \
"must_include": ["86 €"], "source": "carte-identite-passeport.html", "auteur": "Anne"}
{"id": "r1", "question": "horaires de la piscine municipale", "kind": "refuse", "category": "hors corpus"}
"""
PASSPORT_REPLY = json.dumps({"source": "S1", "reponse": "Le passeport d'un majeur coûte 86 €."})


def test_in_process_run_writes_results_summary_and_a_french_report(fake_demo_index, tmp_path):
    from eval import report
    from eval.runner import InProcess, run
    from tests.conftest import fake_answerer

    cases = load_cases(write(tmp_path / "d.jsonl", DEMO_CASES))
    summary = run(InProcess(fake_answerer(fake_demo_index, PASSPORT_REPLY, tmp_path)), cases, tmp_path / "out")
    results = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["passed"] for r in results] == [True, True]
    assert results[0]["retrieval_rank"] == 1 and results[0]["extra"] == {"auteur": "Anne"}
    assert results[0]["cpu_s"] >= 0 and results[0]["passages"][0]["label"] == "S1"
    assert summary["handled_right"] == 1.0 and summary["run"]["prompt_version"] == "answer-fr-v1"
    assert set(summary["by_category"]) == {"papiers", "hors corpus"}
    page = report.write(tmp_path / "out", failures=[]).read_text()
    assert page.startswith("<!DOCTYPE html>") and 'lang="fr"' in page
    assert "Seuils de mise en production atteints" in page and "Aucune question en échec" in page
    assert "http" not in page.split("<body>")[0]  # self-contained: no external asset


def test_http_run_goes_through_the_api(fake_demo_index, tmp_path):
    from fastapi.testclient import TestClient

    from bot.api import create_app
    from eval.runner import OverHttp, run
    from tests.conftest import fake_answerer
    from tests.unit.test_api import settled

    cases = load_cases(write(tmp_path / "d.jsonl", DEMO_CASES))
    answerer = fake_answerer(fake_demo_index, PASSPORT_REPLY, tmp_path)
    with TestClient(create_app(lambda: answerer)) as client:
        settled(client)
        summary = run(OverHttp("http://testserver", client=client), cases, tmp_path / "out")
    assert summary["handled_right"] == 1.0 and summary["run"]["url"] == "http://testserver"


def test_diff_shows_regressions_and_fixes(fake_demo_index, tmp_path):
    from eval.diff import diff
    from eval.runner import InProcess, run
    from tests.conftest import fake_answerer

    cases = load_cases(write(tmp_path / "d.jsonl", DEMO_CASES))
    run(InProcess(fake_answerer(fake_demo_index, PASSPORT_REPLY, tmp_path)), cases, tmp_path / "good")
    wrong = '{"source": "S1", "reponse": "Je ne sais pas."}'
    run(InProcess(fake_answerer(fake_demo_index, wrong, tmp_path)), cases, tmp_path / "bad")
    changes = diff(tmp_path / "good", tmp_path / "bad")
    assert [r["id"] for r in changes["regressions"]] == ["a1"] and changes["fixes"] == []
    assert changes["metrics"]["handled_right"] == (1.0, 0.5)
    assert [r["id"] for r in diff(tmp_path / "bad", tmp_path / "good")["fixes"]] == ["a1"]


def test_csv_round_trip_keeps_everything(tmp_path):
    from eval.dataset import save_cases

    cases = load_cases(write(tmp_path / "d.jsonl", DEMO_CASES))
    save_cases(cases, tmp_path / "d.csv")
    assert load_cases(tmp_path / "d.csv") == cases


def test_an_expected_outcome_and_the_facts_of_a_refusal_are_checked():
    from eval.dataset import Case

    case = Case(
        id="e", question="q", kind="refuse", category="urgence", must_include=["112"], outcome="handoff_emergency"
    )
    reply = {"answer": "Appelez le 112.", "outcome": "handoff_emergency", "citations": []}
    assert score_case(case, reply, {})["passed"]
    assert "missing 112" in score_case(case, reply | {"answer": "Appelez la mairie."}, {})["why"]
    assert "expected handoff_emergency" in score_case(case, reply | {"outcome": "refused_abusive"}, {})["why"]
