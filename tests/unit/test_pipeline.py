"""The whole answer path with fakes: what the resident gets for each way a turn can end."""

import json

from bot.answer.outcomes import Outcome
from bot.answer.pipeline import ANSWER_STEPS
from tests.conftest import fake_answerer


def test_steps_read_like_a_table_of_contents():
    assert [s.__name__ for s in ANSWER_STEPS] == [
        "InputGuard",
        "QuestionRouter",
        "FollowUpRewriter",
        "ValidatedAnswerLookup",
        "PassageRetriever",
        "EvidenceFinder",
        "AnswerComposer",
        "OutputGuard",
    ]


def test_answer_with_citation(fake_demo_index, tmp_path):
    reply = json.dumps({"source": "S1", "reponse": "Le passeport d'un majeur coûte 86 €."})
    result = fake_answerer(fake_demo_index, reply, tmp_path).answer("prix du passeport pour un majeur").to_trace()
    assert result["outcome"] == "answered"
    assert result["answer"] == "Le passeport d'un majeur coûte 86 €."
    [citation] = result["citations"]
    assert set(citation) == {"title", "source", "url", "date", "quote"}
    assert citation["source"] == "carte-identite-passeport.html" and "86 €" in citation["quote"]
    assert {"retrieval", "llm", "seconds"} <= set(result["trace"]) and result["seconds"] > 0


def test_no_sources_routes_the_resident(fake_demo_index, tmp_path):
    turn = fake_answerer(fake_demo_index, "{}", tmp_path).answer("horaires de la piscine municipale")
    assert turn.outcome is Outcome.UNANSWERABLE_NO_SOURCES
    assert "01 99 00 12 34" in turn.answer and turn.citations == []


def test_a_question_no_sentence_answers_is_sent_to_the_service_whose_topics_it_is_about(fake_demo_index, tmp_path):
    from bot.answer.steps.evidence_finder import EvidenceFinder
    from bot.engines.verifier import FakeVerifier

    answerer = fake_answerer(fake_demo_index, "{}", tmp_path)
    answerer.step(EvidenceFinder).verifier = FakeVerifier({})  # scripted below: nothing answers
    answerer.step(EvidenceFinder).threshold = 2.0
    building = answerer.answer("Quel délai pour un permis de construire une piscine ?")
    assert building.outcome is Outcome.UNANSWERABLE_NO_SOURCES and building.trace["service"] == "urbanisme"
    assert "urbanisme@valbourg-sur-loire.fr" in building.answer
    school = answerer.answer("La cantine et la garderie de l'école maternelle le mercredi ?")
    assert school.trace["service"] == "enfance" and "enfance@valbourg-sur-loire.fr" in school.answer


def test_invented_figure_falls_back_to_the_quote(fake_demo_index, tmp_path):
    reply = json.dumps({"source": "S1", "reponse": "Le passeport coûte 99 €."})
    turn = fake_answerer(fake_demo_index, reply, tmp_path).answer("prix du passeport pour un majeur")
    assert turn.outcome is Outcome.ANSWERED_FROM_QUOTE
    assert turn.answer.startswith("Voici ce qu'indique le document officiel : « ") and "99" not in turn.answer


def test_routed_question_gets_its_message_and_no_citation(fake_demo_index, tmp_path):
    turn = fake_answerer(fake_demo_index, "{}", tmp_path).answer("Où en est mon dossier de permis ?")
    assert turn.outcome is Outcome.HANDOFF_INDIVIDUAL_DECISION
    assert "01 99 00 12 34" in turn.answer and turn.citations == []


def test_masked_personal_data_is_explained_and_the_question_still_answered(fake_demo_index, tmp_path):
    reply = json.dumps({"source": "S1", "reponse": "Le passeport d'un majeur coûte 86 €."})
    turn = fake_answerer(fake_demo_index, reply, tmp_path).answer(
        "prix du passeport pour un majeur ? (anne.dupont@exemple.fr)"
    )
    assert turn.outcome is Outcome.ANSWERED
    assert turn.answer.startswith("Pour protéger vos données, j'ai masqué dans votre message : courriel.")
    assert "86 €" in turn.answer and "anne.dupont" not in json.dumps(turn.to_json())


def test_an_answer_whose_sources_are_all_old_says_their_year(fake_demo_index, tmp_path):
    from datetime import date

    reply = json.dumps({"source": "S1", "reponse": "Le passeport d'un majeur coûte 86 €."})
    answerer = fake_answerer(fake_demo_index, reply, tmp_path)
    answerer.today = lambda: date(2028, 1, 1)  # the passport page (2026-10-02) is then over a year old
    turn = answerer.answer("prix du passeport pour un majeur")
    assert turn.outcome is Outcome.ANSWERED
    assert turn.answer == (
        "Le passeport d'un majeur coûte 86 €. D'après un document de 2026 ; vérifiez auprès de la mairie."
    )
    assert turn.dated and turn.answer.endswith(turn.dated)
    refused = answerer.answer("horaires de la piscine municipale")
    assert refused.outcome is Outcome.UNANSWERABLE_NO_SOURCES and "D'après un document" not in refused.answer
    answerer.today = lambda: date(2027, 1, 1)  # under a year (GUICHET_STALE_AFTER_DAYS): nothing to say
    assert answerer.answer("prix du passeport pour un majeur").answer == "Le passeport d'un majeur coûte 86 €."
    # ... unless the resident asks about this year, and the page is from the last one
    this_year = answerer.answer("prix du passeport pour un majeur cette année")
    assert this_year.answer.endswith("D'après un document de 2026 ; vérifiez auprès de la mairie.")


def test_the_age_of_sources_is_said_only_when_every_one_is_dated_and_old():
    from datetime import date

    from bot.answer.pipeline import old_sources_year
    from bot.answer.turn import Citation

    today = date(2026, 12, 7)
    tariffs, fiche = Citation("T", "t.pdf", "", "2014-01-01", "q"), Citation("F", "f.xml", "", "2020-05-04", "q")
    recent, undated = Citation("R", "r.md", "", "2026-06-01", "q"), Citation("U", "u.md", "", "", "q")
    assert old_sources_year([tariffs, fiche], 365, today) == 2020  # the newest of them
    assert old_sources_year([tariffs, recent], 365, today) is None
    assert old_sources_year([tariffs, undated], 365, today) is None
    assert old_sources_year([], 365, today) is None
    assert old_sources_year([recent], 365, today, asked=2027) == 2026  # "l'année prochaine"
    assert old_sources_year([recent], 365, today, asked=2026) is None
    assert old_sources_year([undated], 365, today, asked=2027) is None


def test_a_messages_file_without_a_notice_is_refused_at_start_up(tmp_path):
    import pytest
    import yaml

    from bot.answer.outcomes import Messages
    from bot.errors import ConfigError
    from bot.settings import REPO_ROOT

    texts = yaml.safe_load((REPO_ROOT / "prompts" / "messages.fr.yaml").read_text(encoding="utf-8"))
    del texts["notice_old_sources"]
    path = tmp_path / "messages.yaml"
    path.write_text(yaml.safe_dump(texts, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="notice_old_sources"):
        Messages.load(path, {})
