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
        ("Comptez 15 jours.", "5 jours", False),  # whole numbers only
        ("Sinon, appelez l'accueil.", "non", False),  # whole words only
        ("Il coûte 13,69 €.", "3,69 €", False),
        ("Il coûte 3,695 €.", "3,69", False),
        ("au plus tard le 6 e vendredi", "6e vendredi", True),  # ordinal variants
        ("de 9h à 18h30", ["9 h"], True),
        ("1 000 places", "1000", True),
        ("Non, c'est interdit.", "non", True),
    ],
)
def test_matching_rules(reply, expected, ok):
    assert contains(reply, expected) is ok


def test_malformed_lines_are_reported_with_their_number(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"id": "a", "question": "q", "kind": "answer"}\n{"id": "b", oops}\n')
    with pytest.raises(DatasetError, match=r"d.jsonl:2: ligne JSON invalide"):
        load_cases(path)
    path = write(tmp_path / "e.jsonl", '{"id": "a", "question": "q", "kind": "maybe"}\n')
    with pytest.raises(DatasetError, match=r"e.jsonl:1: kind doit valoir"):
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


def _case(kind, must=(), **fields):
    from eval.dataset import Case

    outcomes = ["unanswerable_no_sources"] if kind == "refuse" else []
    return Case(id="x", question="q", kind=kind, category="c", must_include=list(must), outcomes=outcomes, **fields)


REFUSED = {
    "answer": "Je n'ai pas trouvé. Contactez l'accueil au 01 99 00 12 34.",
    "outcome": "unanswerable_no_sources",
    "citations": [],
}
GOOD = {"answer": "Il coûte 86 €.", "outcome": "answered", "citations": [{"quote": "Passeport majeur : 86 €"}]}
EVIDENCE = {"S1": "Passeport majeur : 86 €"}


def test_scoring_answer_refusal_and_invention():
    assert score_case(_case("answer", ["86 €"]), GOOD, EVIDENCE)["passed"]
    invented = dict(GOOD, answer="Il coûte 86 €, appelez le 01 23 45 67 89.")
    result = score_case(_case("answer", ["86 €"]), invented, EVIDENCE)
    assert not result["passed"] and result["invented"] == ["0123456789"]
    assert score_case(_case("refuse"), REFUSED, {})["passed"]
    assert "refus (" in score_case(_case("answer", ["86 €"]), REFUSED, {})["why"]


def test_the_year_of_a_cited_document_is_not_an_invented_figure():
    dated = dict(GOOD, answer="Il coûte 86 €. D'après un document de 2014 ; vérifiez auprès de la mairie.")
    dated["citations"] = [{"quote": "Passeport majeur : 86 €", "date": "2014-01-01"}]
    assert score_case(_case("answer", ["86 €"]), dated, EVIDENCE)["invented"] == []
    undated = dict(dated, citations=[{"quote": "Passeport majeur : 86 €"}])
    assert score_case(_case("answer", ["86 €"]), undated, EVIDENCE)["invented"] == ["2014"]


def test_an_error_never_passes_not_even_as_a_refusal():
    error = {"answer": "Problème technique. Contactez l'accueil au 01 99 00 12 34.", "outcome": "error_llm"}
    result = score_case(_case("refuse"), error | {"citations": []}, {})
    assert not result["passed"] and "error" in result["why"]


def test_a_refusal_needs_an_accepted_outcome_and_a_way_forward():
    other = REFUSED | {"outcome": "refused_out_of_scope"}
    assert "attendu : unanswerable_no_sources" in score_case(_case("refuse"), other, {})["why"]
    dead_end = REFUSED | {"answer": "Je n'ai pas trouvé cette information."}
    assert "refus sans suite possible" in score_case(_case("refuse"), dead_end, {})["why"]


def test_an_answer_needs_a_citation_found_in_the_passages():
    assert "citation valide" in score_case(_case("answer", ["86 €"]), GOOD | {"citations": []}, EVIDENCE)["why"]
    elsewhere = GOOD | {"citations": [{"quote": "Passeport mineur : 42 €"}]}
    assert "citation valide" in score_case(_case("answer", ["86 €"]), elsewhere, EVIDENCE)["why"]


def test_a_yes_no_answer_of_the_wrong_polarity_fails():
    case = _case("answer", [["interdit"]], polarity="non")
    evidence = {"S1": "Il est interdit de la vendre."}
    cited = [{"quote": "Il est interdit de la vendre."}]
    wrong = {"answer": "Oui, il est interdit de la vendre sauf accord.", "outcome": "answered", "citations": cited}
    right = wrong | {"answer": "Non, il est interdit de la vendre."}
    assert "à l'envers" in score_case(case, wrong, evidence)["why"]
    assert score_case(case, right, evidence)["passed"]


def test_a_refuse_case_must_name_what_it_accepts(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"id": "r", "question": "Météo ?", "kind": "refuse"}\n')
    with pytest.raises(DatasetError, match=r"d.jsonl:1: un cas à refuser doit nommer les issues"):
        load_cases(path)
    path = write(tmp_path / "e.jsonl", '{"id": "r", "question": "q", "kind": "refuse", "outcome": "nope"}\n')
    with pytest.raises(DatasetError, match=r"issue\(s\) inconnue"):
        load_cases(path)
    ok = write(tmp_path / "f.jsonl", '{"id": "r", "question": "q", "kind": "refuse", "outcome": "handoff_emergency"}')
    assert load_cases(ok)[0].outcomes == ["handoff_emergency"]


def test_ordinary_questions_turned_away_and_the_route_matrix_are_summarised():
    base = {"category": "c", "answered": False, "invented": [], "citation_valid": False, "passed": False}
    results = [
        base | {"kind": "answer", "ordinary": True, "routed": True, "outcome": "refused_out_of_scope"},
        base | {"kind": "answer", "ordinary": True, "routed": False, "outcome": "answered", "answered": True},
        base | {"kind": "refuse", "accepted": ["handoff_emergency"], "routed": True, "outcome": "handoff_emergency"},
    ]
    summary = summarise(results)
    assert summary["ordinary_routed_away"] == 0.5
    assert summary["routes"] == {
        "answered": {"refused_out_of_scope": 1, "answered": 1},
        "handoff_emergency": {"handoff_emergency": 1},
    }


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
{"id": "r1", "question": "horaires de la piscine municipale", "kind": "refuse", "category": "hors corpus", \
"outcome": "unanswerable_no_sources"}
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
    assert results[0]["model_output"] == PASSPORT_REPLY  # the model's own words, before the output guard
    assert summary["handled_right"] == 1.0 and summary["run"]["prompt_version"] == "answer-fr-v2"
    assert set(summary["by_category"]) == {"papiers", "hors corpus"}
    page = report.write(tmp_path / "out", failures=[]).read_text()
    assert page.startswith("<!DOCTYPE html>") and 'lang="fr"' in page
    assert "Seuils de mise en production atteints" in page and "Aucune question en échec" in page
    assert "http" not in page.split("<body>")[0]  # self-contained: no external asset


def test_replay_scores_the_stored_model_replies_again_with_todays_checks(fake_demo_index, tmp_path):
    from dataclasses import replace

    from bot.settings import Settings
    from eval.replay import replay
    from eval.runner import InProcess, load_results, run
    from tests.conftest import fake_answerer

    cases = load_cases(write(tmp_path / "d.jsonl", DEMO_CASES))
    run(InProcess(fake_answerer(fake_demo_index, PASSPORT_REPLY, tmp_path)), cases, tmp_path / "run")
    settings = Settings(thresholds_file=tmp_path / "thresholds.yaml")
    same = replay(tmp_path / "run", cases, settings, tmp_path / "same")
    assert [r["passed"] for r in load_results(tmp_path / "same")] == [True, True]
    assert same["handled_right"] == 1.0 and same["run"]["replayed"] == 2  # the fake verifier let both reach the model
    # The stored reply, as a model that invents a price would have written it: the checks of today catch it.
    stored = load_results(tmp_path / "run")
    stored[0]["model_output"] = json.dumps({"source": "S1", "reponse": "Le passeport d'un majeur coûte 96 €."})
    write(tmp_path / "run" / "results.jsonl", "".join(json.dumps(r) + "\n" for r in stored))
    replay(tmp_path / "run", cases, settings, tmp_path / "invented")
    first = load_results(tmp_path / "invented")[0]
    assert first["outcome"] == "answered_from_quote" and "96" not in first["answer"] and "86 €" in first["answer"]
    with pytest.raises(ValueError, match="not in"):
        replay(tmp_path / "run", [*cases, replace(cases[0], id="a2")], settings, tmp_path / "more")
    # A follow-up was answered after its conversation: without it the steps would see another question.
    followed = [replace(cases[0], history=["Quels sont les horaires de la mairie ?"]), cases[1]]
    kept = replay(tmp_path / "run", followed, settings, tmp_path / "followed")
    assert kept["run"]["replayed"] == 1 and load_results(tmp_path / "followed")[0] == stored[0]  # only the other


def test_http_run_goes_through_the_api(fake_demo_index, tmp_path):
    from fastapi.testclient import TestClient

    from bot.web.app import create_app
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
    wrong = json.dumps({"source": "S1", "reponse": "Le passeport se demande à l'accueil de la mairie."})
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
        id="e", question="q", kind="refuse", category="urgence", must_include=["112"], outcomes=["handoff_emergency"]
    )
    reply = {"answer": "Appelez le 112.", "outcome": "handoff_emergency", "citations": []}
    assert score_case(case, reply, {})["passed"]
    assert "manque 112" in score_case(case, reply | {"answer": "Appelez la mairie au 01 99 00 12 34."}, {})["why"]
    assert "attendu : handoff_emergency" in score_case(case, reply | {"outcome": "refused_abusive"}, {})["why"]


def test_the_report_shows_where_questions_went_and_ordinary_ones_turned_away_first():
    from eval.report import render

    base = {"category": "c", "invented": [], "citation_valid": False, "passed": False, "why": "x", "answer": "…"}
    results = [
        base | {"id": "a", "question": "Prix ?", "kind": "answer", "outcome": "answered", "answered": True},
        base
        | {"id": "o", "question": "Nom du maire ?", "kind": "answer", "ordinary": True, "routed": True}
        | {"outcome": "refused_personal_data", "answered": False},
    ]
    page = render(summarise(results), results, failures=[])
    assert "Parcours des questions" in page and "données d&#x27;autrui" in page
    turned_away = page.split("écartées à tort (1)")[1]
    assert "o : Nom du maire ?" in turned_away
    assert page.index("<strong>o</strong>") < page.index("<strong>a</strong>")  # listed first among failures


def test_retrieval_alone_ranks_each_case_with_a_source_even_below_the_no_source_gate(fake_demo_index, tmp_path):
    from bot.answer.steps.passage_retriever import PassageRetriever
    from eval.runner import run_retrieval
    from tests.conftest import fake_answerer

    cases = [
        {"id": "a", "question": "Combien coûte un passeport ?", "kind": "answer", "must_include": ["86 €"],
         "source": "carte-identite-passeport.html"},
        {"id": "b", "question": "Horaires de la déchetterie ?", "kind": "answer", "must_include": ["9 h"],
         "source": "nowhere.md"},
        {"id": "c", "question": "Zorglub quinquagénaire ?", "kind": "answer", "must_include": ["x"],
         "source": "nowhere.md"},  # below the no-source gate: the ranking is still read
        {"id": "d", "question": "Quel temps demain ?", "kind": "refuse", "outcome": ["refused_out_of_scope"]},
    ]  # fmt: skip
    dataset = write(tmp_path / "set.jsonl", "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases))
    retriever = fake_answerer(fake_demo_index, "{}", tmp_path).step(PassageRetriever)
    summary = run_retrieval(retriever, load_cases(dataset))
    assert summary["cases"] == 3 and summary["hit_at_10"] == 0.3333  # a source no ranking holds counts as missed
    assert summary["hit_at_1"] <= summary["hit_at_2"] <= summary["hit_at_10"] and summary["mrr"] > 0


def test_a_quote_whole_in_one_passage_is_found_though_passages_overlap():
    from bot.engines.index import PASSAGE_BREAK
    from eval.facts import quote_in_document

    # as ingestion stores a list cut between two passages: the second repeats the first's last item
    document = PASSAGE_BREAK.join(
        ["Se présenter :\n- au commissariat,\n- ou au tribunal\n-", "ou au tribunal\n- ou en mairie.\nFin."]
    )
    assert quote_in_document("Se présenter : au commissariat, ou au tribunal", document)
    assert quote_in_document("ou au tribunal - ou en mairie. […] Fin.", document)
    assert not quote_in_document("Se présenter : au commissariat, ou en mairie.", document)
