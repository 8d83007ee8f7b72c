"""The phone channel with the fake model: dialog decisions, rendering for the ear, jambonz webhooks."""

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from bot.answer.steps.answer_composer import AnswerComposer
from bot.answer.steps.passage_retriever import PassageRetriever
from bot.errors import ConfigError
from bot.phone import jambonz
from bot.phone.dialog import ASKS_FOR_A_PERSON, VoiceDialog, speakable
from bot.phone.menu import sections_by_document
from bot.settings import REPO_ROOT, Settings
from bot.text import fold
from bot.web.app import create_app
from tests.conftest import fake_answerer
from tests.jambonz_spec import rejected
from tests.unit.test_api import settled

PASSPORT = json.dumps({"source": "S1", "reponse": "Un passeport pour un majeur coûte 86 €."})
TUESDAY_10H = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
SUNDAY = datetime(2026, 11, 22, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
SECRET = "s3cret"


@pytest.fixture
def answerer(fake_demo_index, tmp_path):
    return fake_answerer(fake_demo_index, PASSPORT, tmp_path)


def sections_of(answerer):
    return sections_by_document(answerer.step(PassageRetriever).index.chunks)


def dialog(answerer, now=TUESDAY_10H, voice=None):
    voice = answerer.town["voice"] if voice is None else voice
    return VoiceDialog(answerer, answerer.messages, voice, clock=lambda: now, sections=sections_of(answerer))


def test_answer_is_short_spoken_and_names_its_source(answerer):
    reply = dialog(answerer).handle("call-1", "prix du passeport pour un majeur", 0.92)
    assert reply.action == "continue"
    assert "86 euros" in reply.speech_text and "€" not in reply.speech_text and "http" not in reply.speech_text
    assert "Source : Carte d'identité et passeport" in reply.speech_text
    assert reply.speech_text.endswith("Avez-vous une autre question ?")
    assert "86 €" in reply.display_text


def test_the_age_of_old_sources_is_said_on_the_phone_after_the_shortened_answer(fake_demo_index, tmp_path):
    from datetime import date

    said = "Un passeport pour un majeur coûte 86 €. Il est valable 10 ans. Le timbre est fiscal."
    long_reply = json.dumps({"source": "S1", "reponse": said})
    answerer = fake_answerer(fake_demo_index, long_reply, tmp_path)
    answerer.today = lambda: date(2028, 1, 1)
    voice = dialog(answerer)
    reply = voice.handle("call-1", "prix du passeport pour un majeur", 0.92)
    spoken = reply.speech_text
    assert spoken.index("D'après un document de 2026") < spoken.index("Source :") < spoken.index("plus de détails")
    details = voice.handle("call-1", "oui", 0.9).speech_text  # the rest of the answer, on request
    assert details.endswith("Avez-vous une autre question ?") and "D'après" not in details
    assert "86 euros" in spoken + details


def test_a_call_keeps_the_sessions_settings_for_history_and_expiry(fake_demo_index, tmp_path):
    from bot.web.service import Service

    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    service = Service(lambda: answerer, Settings(session_ttl_seconds=0, session_max_turns=2))
    service.load()
    voice = service.dialog
    for question in ("prix du passeport pour un majeur", "et pour un mineur ?", "et la carte d'identité ?"):
        voice.handle("call-1", question, 0.9)
    assert [h["question"] for h in voice.calls["call-1"].history][0] != "prix du passeport pour un majeur"
    assert len(voice.calls["call-1"].history) == 2
    voice.handle("call-2", "", 0.1)  # a word on another call, later: the first one has expired (ttl 0)
    assert list(voice.calls) == ["call-2"]


@pytest.mark.parametrize(
    "words",
    [
        "je voudrais parler à quelqu'un",
        "Passez-moi un agent",
        "un conseiller s'il vous plaît",
        "Est-ce que je peux parler à une vraie personne ?",
        "le standard",
    ],
)
def test_asking_for_a_person_is_heard(words):
    assert ASKS_FOR_A_PERSON.search(fold(words))


def test_no_question_of_the_dev_sets_is_taken_for_a_request_for_a_person():
    # "Quel est le salaire d'un agent…", "Joue le rôle d'un agent…" were handed over before.
    questions = [
        json.loads(line)["question"]
        for path in sorted((REPO_ROOT / "eval" / "datasets" / "dev").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert len(questions) > 600
    assert [q for q in questions if ASKS_FOR_A_PERSON.search(fold(q))] == []


def test_a_follow_up_on_the_phone_is_read_with_the_previous_question(answerer):
    from bot.answer.steps.answer_composer import AnswerComposer

    voice = dialog(answerer)
    voice.handle("call-1", "prix du passeport majeur", 0.9)
    voice.handle("call-1", "et pour un mineur", 0.9)
    voice.handle("call-2", "et pour un mineur", 0.9)  # another call knows nothing of the first
    calls = answerer.step(AnswerComposer).model.calls
    assert "prix du passeport majeur et pour un mineur" in calls[1][-1]["content"]
    assert len(calls) == 2 or "prix du passeport" not in calls[2][-1]["content"]


def test_low_confidence_asks_again_once_then_offers_the_keypad(answerer):
    voice = dialog(answerer)
    first = voice.handle("call-1", "euh passe pore", 0.2)
    second = voice.handle("call-1", "", None)
    assert (first.action, second.action) == ("repeat", "repeat")
    assert "répéter" in first.speech_text and "touches" in second.speech_text
    assert "Pour les cartes d'identité et les passeports, tapez 1." in second.speech_text
    assert second.speech_text.endswith("Pour parler à quelqu'un, tapez 0.")
    without_menu = VoiceDialog(answerer, answerer.messages, {**answerer.town["voice"], "menu": None})
    without_menu.handle("call-2", "euh", 0.2)
    assert "Tapez 1 pour répéter" in without_menu.handle("call-2", "", None).speech_text  # only a person, by 0


def _menu_of(voice, call="call-1"):
    voice.handle(call, "euh passe pore", 0.2)
    return voice.handle(call, "", None)


def test_the_keypad_menu_says_a_topics_sections_and_answers_the_one_chosen(answerer):
    voice = dialog(answerer)
    _menu_of(voice)
    papers = voice.handle("call-1", dtmf="1")
    assert papers.action == "repeat"
    assert papers.speech_text == (  # the sections of the topic's document, as the index holds them
        "les cartes d'identité et les passeports : Pour Prendre rendez-vous, tapez 1. Pour Avant le rendez-vous, "
        "tapez 2. Pour Tarifs, tapez 3. Pour Retrait du titre, tapez 4. Pour revenir aux sujets, tapez 9. "
        "Pour parler à quelqu'un, tapez 0."
    )
    asked = []
    answer = answerer.answer
    answerer.answer = lambda question, *args, **kwargs: asked.append(question) or answer(question, *args, **kwargs)
    chosen = voice.handle("call-1", dtmf="3")
    assert asked == ["Tarifs : Carte d'identité et passeport : prendre rendez-vous"]  # through the answer path
    assert chosen.action == "continue" and "tapez" not in chosen.speech_text.split("?")[0]
    assert voice.calls["call-1"].menu == ""  # back to speech: 1 now means "yes" or "repeat" again


def test_a_topic_of_several_documents_names_each_section_with_its_document(answerer):
    voice = dialog(answerer)
    _menu_of(voice)
    waste = voice.handle("call-1", dtmf="3").speech_text
    assert "Pour Encombrants, Collecte des déchets et des encombrants, tapez 2." in waste
    assert "Pour Horaires, La déchetterie intercommunale des Prés-Hauts, tapez 4." in waste
    school = dialog(answerer)
    _menu_of(school, "call-2")
    pdf = school.handle("call-2", dtmf="4").speech_text  # a PDF whose only headings are page marks: its title
    assert "Pour Tarifs de la restauration scolaire et du périscolaire 2026-2027, tapez 4." in pdf
    assert "Page 1" not in pdf


def test_a_long_topic_is_said_eight_choices_at_a_time(answerer):
    many = {"topic": "les questions fréquentes", "questions": [f"Question numéro {n} ?" for n in range(1, 11)]}
    voice = dialog(answerer, voice={**answerer.town["voice"], "menu": [many]})
    _menu_of(voice)
    first = voice.handle("call-1", dtmf="1").speech_text
    assert "Question numéro 8 ?, tapez 8." in first and "numéro 9" not in first
    assert "Pour d'autres choix, tapez 9." in first
    second = voice.handle("call-1", dtmf="9").speech_text
    assert "Pour Question numéro 9 ?, tapez 1." in second and "Pour revenir aux sujets, tapez 9." in second
    back = voice.handle("call-1", dtmf="9").speech_text
    assert back.startswith("Pour les questions fréquentes, tapez 1.")


def test_the_keypad_menu_says_a_wrong_key_and_hands_over_with_0(answerer):
    voice = dialog(answerer)
    _menu_of(voice)
    wrong = voice.handle("call-1", dtmf="9")  # eight topics: 9 is none of them
    assert wrong.speech_text.startswith("Cette touche ne correspond à aucun choix. Pour les cartes")
    voice.handle("call-1", dtmf="6")
    wrong_in_topic = voice.handle("call-1", dtmf="7")  # the cemetery has four sections
    assert wrong_in_topic.speech_text.startswith("Cette touche ne correspond à aucun choix. le cimetière :")
    back = voice.handle("call-1", dtmf="9")
    assert back.speech_text.startswith("Pour les cartes d'identité") and "toujours pas" not in back.speech_text
    person = voice.handle("call-1", dtmf="0")
    assert person.action == "handoff" and person.handoff_target == "+33199001234"
    closed = dialog(answerer, now=SUNDAY)
    _menu_of(closed, "call-2")
    callback = closed.handle("call-2", dtmf="0")  # outside opening hours: when to call back
    assert callback.action == "end" and "lundi au vendredi" in callback.speech_text


def test_a_caller_who_speaks_in_the_keypad_menu_is_answered(answerer):
    voice = dialog(answerer)
    _menu_of(voice)
    spoken = voice.handle("call-1", "prix du passeport pour un majeur", 0.9)
    assert spoken.action == "continue" and "86 euros" in spoken.speech_text
    assert voice.handle("call-1", dtmf="1").speech_text == spoken.speech_text  # 1 repeats, as outside the menu


def test_a_menu_whose_documents_are_not_indexed_is_left_out_and_the_phone_still_answers(answerer, caplog):
    absent = {"topic": "l'état civil", "documents": ["absent.md"]}
    voice = dialog(answerer, voice={**answerer.town["voice"], "menu": [absent]})
    assert voice.menu is None and "absent.md" in caplog.text
    voice.handle("call-1", "euh", 0.2)
    assert "Tapez 1 pour répéter" in voice.handle("call-1", "", None).speech_text  # only a person, by 0


@pytest.mark.parametrize(
    "menu, problem",
    [
        ("des papiers", "expected a list of 1 to 8 topics"),
        ([{"topic": f"sujet {n}", "questions": ["q ?"]} for n in range(9)], "expected a list of 1 to 8 topics"),
        ([{"questions": ["q ?"]}], "topic 1: 'topic' must be"),
        ([{"topic": "l'état civil", "questions": "q ?"}], "topic 1 (l'état civil): 'questions' must be a list"),
        ([{"topic": "l'état civil", "documents": ["etat-civil.md", ""]}], "'documents' must be a list of texts"),
    ],
)
def test_a_badly_written_keypad_menu_stops_the_start_with_where_and_what(answerer, menu, problem):
    with pytest.raises(ConfigError, match=re.escape(problem)) as raised:
        dialog(answerer, voice={**answerer.town["voice"], "menu": menu})
    assert "config/town.yaml, voice.menu" in str(raised.value)


def topical_dialog(answerer):
    from bot.engines.embedder import FakeEmbedder
    from bot.phone.topics import Topics

    names = Topics.of_town(answerer.town, ["Carte d'identité et passeport : prendre rendez-vous", "Marché"])
    topics = Topics(names, FakeEmbedder(), min_meaning=0.99, min_sound=0.8)  # the fake embedder: by sound only
    return VoiceDialog(
        answerer,
        answerer.messages,
        answerer.town["voice"],
        clock=lambda: TUESDAY_10H,
        topics=topics,
        sections=sections_of(answerer),
    )


def test_a_badly_heard_question_is_confirmed_by_its_topic_then_answered(answerer):
    voice = topical_dialog(answerer)
    asked = voice.handle("call-1", "prix du camp d'identité et passeport majeur", 0.3)
    assert asked.action == "repeat" and "au sujet de : carte d'identité et passeport ?" in asked.speech_text
    assert "tapez 1" in asked.speech_text
    answered = voice.handle("call-1", "oui c'est ça", 0.4)
    assert answered.action == "continue" and "86 euros" in answered.speech_text
    again = voice.handle("call-2", "prix du camp d'identité et passeport", 0.3)
    assert "au sujet de" in again.speech_text
    by_key = voice.handle("call-2", dtmf="1")
    assert "86 euros" in by_key.speech_text


def test_a_confirmed_topic_whose_question_finds_no_answer_offers_its_keypad_choices(answerer):
    from bot.answer.outcomes import Outcome
    from bot.answer.turn import Turn

    voice = topical_dialog(answerer)
    nothing = "Je n'ai pas trouvé cette information."
    answerer.answer = lambda q, *a, **k: Turn(question=q, answer=nothing, outcome=Outcome.UNANSWERABLE_NO_SOURCES)
    voice.handle("call-1", "le camp d'identité et passeport pour mon fils", 0.3)
    choices = voice.handle("call-1", dtmf="1")  # yes, that topic
    assert choices.speech_text.startswith("Je n'ai pas trouvé la réponse précise. Choisissez avec les touches")
    assert "les cartes d'identité et les passeports : Pour Prendre rendez-vous, tapez 1." in choices.speech_text
    assert voice.calls["call-1"].menu == "choices" and voice.calls["call-1"].unanswered == 0


def test_a_wrong_topic_is_said_no_to_and_the_caller_asked_again(answerer):
    voice = topical_dialog(answerer)
    voice.handle("call-1", "prix du camp d'identité", 0.3)
    refused = voice.handle("call-1", "non", 0.9)
    assert refused.action == "repeat" and "répéter" in refused.speech_text
    voice.handle("call-2", "prix du camp d'identité", 0.3)
    other = voice.handle("call-2", "quand a lieu le marché", 0.9)  # neither yes nor no: a new question
    assert other.action == "continue" and "au sujet de" not in other.speech_text
    nothing_like = voice.handle("call-3", "euh bof", 0.2)  # lands on no topic: asked to repeat, as before
    assert "répéter" in nothing_like.speech_text


def test_keypad_zero_and_asking_for_a_person_hand_over_during_opening_hours(answerer):
    voice = dialog(answerer)
    by_key = voice.handle("call-1", dtmf="0")
    by_voice = voice.handle("call-2", "je voudrais parler à quelqu'un")
    for reply in (by_key, by_voice):
        assert reply.action == "handoff" and reply.handoff_target == "+33199001234"


def test_out_of_hours_the_caller_gets_the_opening_hours_and_a_polite_end(answerer):
    reply = dialog(answerer, now=SUNDAY).handle("call-1", dtmf="0")
    assert reply.action == "end" and reply.handoff_target is None
    assert "fermé" in reply.speech_text and "lundi au vendredi" in reply.speech_text


def test_two_unanswered_questions_hand_over(fake_demo_index, tmp_path):
    voice = dialog(fake_answerer(fake_demo_index, "{}", tmp_path))
    first = voice.handle("call-1", "horaires de la piscine municipale", 0.9)
    second = voice.handle("call-1", "tarif de la piscine municipale", 0.9)
    assert first.action == "continue" and second.action == "handoff"


def test_an_individual_decision_is_handed_over(answerer):
    reply = dialog(answerer).handle("call-1", "où en est mon dossier de permis de construire", 0.9)
    assert reply.action == "handoff"


def test_keypad_one_repeats_the_last_answer(answerer):
    voice = dialog(answerer)
    answer = voice.handle("call-1", "prix du passeport pour un majeur", 0.9)
    assert voice.handle("call-1", dtmf="1").speech_text == answer.speech_text


def test_speakable_spells_phone_numbers_and_drops_links():
    assert speakable("Appelez le 01 99 00 12 34 ou voyez www.valbourg.fr.") == (
        "Appelez le 01, 99, 00, 12, 34 ou voyez sur le site indiqué."
    )
    assert speakable("Repas : 2,40 € ; extension de 20 m².") == "Repas : 2 euros 40 ; extension de 20 mètres carrés."
    listed = "Il faut :\n- un formulaire\n- une pièce d'identité"
    assert speakable(listed) == "Il faut : un formulaire une pièce d'identité"  # a bullet is not read out


def _signed(client, path, payload, secret=SECRET, timestamp=None):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Jambonz-Signature": jambonz.sign(body, secret, timestamp)}
    return client.post(path, content=body, headers=headers)


CALL = {
    "call_sid": "c-1",
    "from": "+33612345678",
    "to": "+33199001234",
    "direction": "inbound",
    "call_status": "ringing",
}


SPEECH = {
    "synthesizer": {"vendor": "google", "language": "fr-FR", "voice": "fr-FR-Standard-A"},
    "recognizer": {"vendor": "custom:guichet", "hints": ["état civil", "encombrants"]},
}


def _call_and_gather(answerer):
    with TestClient(create_app(lambda: answerer, Settings(voice_webhook_secret=SECRET))) as client:
        settled(client)
        call = _signed(client, "/voice/jambonz/call", CALL).json()
        speech = {"alternatives": [{"transcript": "prix du passeport pour un majeur", "confidence": 0.9}]}
        answer = _signed(client, "/voice/jambonz/gather", CALL | {"reason": "speechDetected", "speech": speech}).json()
        handoff = _signed(client, "/voice/jambonz/gather", CALL | {"reason": "dtmfDetected", "digits": "0"}).json()
    return call, answer, handoff


def test_jambonz_call_and_gather_return_verbs(answerer, caplog):
    call, answer, handoff = _call_and_gather(answerer)
    assert [v["verb"] for v in call] == ["gather"]  # no speech vendor set: the jambonz application's apply
    assert "assistant automatique" in call[0]["say"]["text"] and "intelligence artificielle" in call[0]["say"]["text"]
    assert call[0]["actionHookDelayAction"]["actions"][0]["text"] == "Un instant, je cherche."
    assert answer[0]["verb"] == "gather" and "86 euros" in answer[0]["say"]["text"]
    assert [v["verb"] for v in handoff] in (["say", "dial"], ["say", "hangup"])
    assert "33612345678" not in caplog.text


def test_a_call_opens_with_the_towns_speech_vendors(answerer):
    answerer.town["voice"]["speech"] = SPEECH
    call, _, _ = _call_and_gather(answerer)
    assert call[0] == {
        "verb": "config",
        "synthesizer": {"vendor": "google", "language": "fr-FR", "voice": "fr-FR-Standard-A"},
        "recognizer": {"vendor": "custom:guichet", "hints": ["état civil", "encombrants"], "language": "fr-FR"},
    }


def test_every_verb_array_passes_jambonzs_own_validator(answerer):
    """What the webhooks return and every kind of dialog decision, checked with @jambonz/verb-specifications."""
    arrays = dict(zip(("call", "answer", "handoff"), _call_and_gather(answerer), strict=True))
    answerer.town["voice"]["speech"] = SPEECH
    arrays["call with speech vendors"] = _call_and_gather(answerer)[0]
    open_now, closed = dialog(answerer), dialog(answerer, now=SUNDAY)
    decisions = {
        "continue": open_now.handle("c-2", "prix du passeport pour un majeur", 0.9),
        "repeat": open_now.handle("c-3", "euh", 0.1),
        "handoff in hours": open_now.handle("c-4", "", None, "0"),
        "end out of hours": closed.handle("c-5", "", None, "0"),
    }
    assert {reply.action for reply in decisions.values()} == {"continue", "repeat", "handoff", "end"}
    arrays |= {name: jambonz.verbs_for(reply, "Un instant.") for name, reply in decisions.items()}
    assert rejected(arrays) == {}


def test_the_validator_rejects_what_a_real_gateway_rejects():
    """The check can fail: the opening verb version one sent (no vendor) is refused by jambonz's validator."""
    unnamed = [{"verb": "config", "synthesizer": {"language": "fr-FR"}, "recognizer": {"language": "fr-FR"}}]
    assert rejected({"unnamed": unnamed}) == {"unnamed": "synthesizer: missing value for vendor"}


@pytest.mark.parametrize(
    "speech, complaint",
    [
        ({"synthesizer": {"language": "fr-FR"}}, "'vendor' is required"),
        ({"recognizer": {"vendor": "google", "voice": "x"}}, "unknown key(s) voice"),
        ({"tts": {"vendor": "google"}}, "expected 'synthesizer' and/or 'recognizer'"),
        ({"recognizer": {"vendor": "google", "hints": "mairie"}}, "expected a list"),
    ],
)
def test_a_bad_speech_setting_is_named_at_start_up(speech, complaint):
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        jambonz.opening_verbs(speech)


@pytest.mark.parametrize("tamper", ["unsigned", "wrong-secret", "stale"])
def test_jambonz_rejects_unsigned_or_forged_calls(answerer, tamper):
    with TestClient(create_app(lambda: answerer, Settings(voice_webhook_secret=SECRET))) as client:
        settled(client)
        if tamper == "unsigned":
            response = client.post("/voice/jambonz/call", json=CALL)
        elif tamper == "wrong-secret":
            response = _signed(client, "/voice/jambonz/call", CALL, secret="other")
        else:
            response = _signed(client, "/voice/jambonz/call", CALL, timestamp=int(time.time()) - 3600)
    assert response.status_code == 401


def test_without_a_secret_the_phone_channel_is_off(answerer):
    with TestClient(create_app(lambda: answerer)) as client:
        settled(client)
        assert _signed(client, "/voice/jambonz/call", CALL).status_code == 503


GATEWAY = {"Authorization": f"Bearer {SECRET}"}


def test_generic_voice_turn(answerer):
    with TestClient(create_app(lambda: answerer, Settings(voice_webhook_secret=SECRET))) as client:
        settled(client)
        turn = {"session_id": "s1", "transcript": "", "confidence": 0.1}
        reply = client.post("/api/v1/voice/turn", json=turn, headers=GATEWAY)
        bad = client.post("/api/v1/voice/turn", json={"session_id": "s1", "confidence": 7}, headers=GATEWAY)
    assert reply.json()["action"] == "repeat" and bad.status_code == 422


def test_a_phone_turn_is_counted_and_its_unanswered_question_kept_like_the_webs(answerer, tmp_path):
    settings = Settings(voice_webhook_secret=SECRET, feedback_dir=tmp_path / "feedback")
    with TestClient(create_app(lambda: answerer, settings)) as client:
        settled(client)
        for words in ("prix du passeport pour un majeur", "horaires de la piscine municipale"):
            turn = {"session_id": "s1", "transcript": words, "confidence": 0.9}
            assert client.post("/api/v1/voice/turn", json=turn, headers=GATEWAY).status_code == 200
        metrics = client.get("/metrics").text
    assert 'guichet_turns_total{channel="voice",outcome="answered"} 1.0' in metrics
    [kept] = [
        json.loads(line) for f in (tmp_path / "feedback").glob("lacunes-*.jsonl") for line in f.read_text().splitlines()
    ]
    assert kept["channel"] == "voice" and kept["question"] == "horaires de la piscine municipale"


@pytest.mark.parametrize(
    "secret,headers,status",
    [
        ("", GATEWAY, 503),  # no secret set: the phone channel is off
        (SECRET, {}, 401),
        (SECRET, {"Authorization": "Bearer wrong"}, 401),
        (SECRET, {"Authorization": SECRET}, 401),
    ],
)
def test_the_generic_voice_turn_needs_the_gateway_secret(answerer, secret, headers, status):
    with TestClient(create_app(lambda: answerer, Settings(voice_webhook_secret=secret))) as client:
        settled(client)
        response = client.post(
            "/api/v1/voice/turn", json={"session_id": "s1", "transcript": "passeport"}, headers=headers
        )
    assert response.status_code == status and response.json()["error"]
    assert answerer.step(AnswerComposer).model.calls == []


def test_the_generic_voice_turn_is_rate_limited_per_call(answerer):
    settings = Settings(voice_webhook_secret=SECRET, rate_limit_burst=2, rate_limit_per_minute=6)
    with TestClient(create_app(lambda: answerer, settings)) as client:
        settled(client)

        def say(call):
            return client.post("/api/v1/voice/turn", json={"session_id": call, "transcript": ""}, headers=GATEWAY)

        codes = [say("call-1").status_code for _ in range(3)]
        other_call = say("call-2")
    assert codes == [200, 200, 429] and other_call.status_code == 200


def test_calls_are_bounded_and_safe_to_handle_at_once(answerer):
    voice = VoiceDialog(
        answerer, answerer.messages, answerer.town["voice"], max_calls=50, sections=sections_of(answerer)
    )
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda n: voice.handle(f"call-{n}", ""), range(2000)))
    assert {r.action for r in replies} == {"repeat"} and len(voice.calls) == 50
    assert "call-1999" in voice.calls and "call-0" not in voice.calls


def test_speakable_spells_an_email_address():
    assert speakable("Écrivez à accueil@valbourg-sur-loire.fr.") == (
        "Écrivez à accueil arobase valbourg tiret sur tiret loire point fr."
    )
