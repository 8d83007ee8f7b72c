"""Every channel through one door: each route of the app is either a turn, admitted by the service's gate and rate
limit before the answer path runs, or not a turn and never reaches the answer path. A new route fails here until it
is classified."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from bot.settings import Settings
from bot.web.app import create_app
from bot.web.staff.accounts import AccountStore
from tests.conftest import fake_answerer
from tests.unit.test_api import settled
from tests.unit.test_staff import PASSPORT, PASSWORD, csrf_of, log_in
from tests.unit.test_staff_sets import run_set, upload
from tests.unit.test_voice import CALL, GATEWAY, SECRET, _signed

QUESTION = "prix du passeport pour un majeur"
SPOKEN = {"alternatives": [{"transcript": QUESTION, "confidence": 0.9}]}

# How a client sends one question through each route that answers one.
TURNS = {
    ("POST", "/api/v1/turn"): lambda c: c.post("/api/v1/turn", json={"text": QUESTION}),
    ("POST", "/api/v1/turn/stream"): lambda c: c.post("/api/v1/turn/stream", json={"text": QUESTION}),
    ("POST", "/api/v1/voice/turn"): lambda c: c.post(
        "/api/v1/voice/turn", json={"session_id": "s1", "transcript": QUESTION, "confidence": 0.9}, headers=GATEWAY
    ),
    ("POST", "/voice/jambonz/gather"): lambda c: _signed(
        c, "/voice/jambonz/gather", CALL | {"reason": "speechDetected", "speech": SPOKEN}
    ),
    ("POST", "/staff/essayer"): lambda c: c.post(
        "/staff/essayer", data={"question": QUESTION, "csrf": csrf_of(c.get("/staff/").text)}
    ),
    ("POST", "/staff/jeux/{name}/lancer"): lambda c: (
        upload(c, "porte", json.dumps({"id": "q1", "question": QUESTION, "kind": "answer", "must_include": ["86 €"]})),
        run_set(c, "porte"),
    ),
}

NOT_TURNS = {
    *(("GET", p) for p in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")),
    *(("GET", p) for p in ("/api/v1/widget/config", "/widget.js", "/widget.css", "/demo", "/a-propos")),
    *(("GET", p) for p in ("/healthz", "/readyz", "/metrics", "/staff/console.css", "/staff/console.js")),
    ("POST", "/api/v1/feedback"),
    ("POST", "/speech/tts"),
    ("WS", "/speech/stt"),  # speech to text only: the words come back through a turn route
    ("POST", "/voice/jambonz/call"),  # the welcome, no question yet
    ("POST", "/voice/jambonz/status"),
    *(("GET", p) for p in ("/staff/connexion", "/staff/", "/staff/reponses-validees", "/staff/documents")),
    *(("GET", p) for p in ("/staff/documents/etat", "/staff/avis", "/staff/lacunes", "/staff/jeux")),
    *(("GET", p) for p in ("/staff/jeux/{name}", "/staff/essais/{run_id}/etat", "/staff/essais/{run_id}")),
    *(("GET", p) for p in ("/staff/essais/{run_id}/cas/{case_id}", "/staff/comparer")),
    *(("POST", p) for p in ("/staff/connexion", "/staff/deconnexion", "/staff/approuver", "/staff/revoquer")),
    *(("POST", p) for p in ("/staff/documents/reindexer", "/staff/jeux", "/staff/essais/{run_id}/arreter")),
    ("POST", "/staff/avis/ajouter"),
    *(("GET", p) for p in ("/syndicat/connexion", "/syndicat/")),  # the syndicate's pages: communes, no turn
    *(("POST", p) for p in ("/syndicat/connexion", "/syndicat/deconnexion", "/syndicat/communes")),
    *(("POST", p) for p in ("/syndicat/communes/{slug}/desactiver", "/syndicat/communes/{slug}/activer")),
}


def routes_of(routes, found=None) -> set[tuple[str, str]]:
    """(method, path) of every route, included routers walked."""
    found = set() if found is None else found
    for route in routes:
        if hasattr(route, "path"):
            methods = set(getattr(route, "methods", None) or {"WS"}) - {"HEAD"}
            found |= {(method, route.path) for method in methods}
        else:
            routes_of(route.original_router.routes, found)
    return found


@pytest.fixture
def door(fake_demo_index, tmp_path, monkeypatch):
    """An app whose answer path notes, at each question, how many turns the service's gate holds (on the class:
    a staff run answers with a copy of the service's answerer)."""
    from bot.answer.pipeline import Answerer
    from bot.web.routes import staff as staff_routes
    from bot.web.routes import staff_sets

    staff_routes._auth.cache_clear()
    staff_sets._runs.cache_clear()
    AccountStore(tmp_path / "staff").add("claire", "admin", PASSWORD)
    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    settings = Settings(voice_webhook_secret=SECRET, staff_dir=tmp_path / "staff", feedback_dir=tmp_path / "feedback")
    with TestClient(create_app(lambda: answerer, settings), follow_redirects=False) as client:
        settled(client)
        service = client.app.state.service
        gate_when_answering: list[int] = []
        answer = Answerer.answer

        def noting(self, *args, **kwargs):
            gate_when_answering.append(service.gate.in_flight)
            return answer(self, *args, **kwargs)

        monkeypatch.setattr(Answerer, "answer", noting)
        log_in(client)
        yield client, service, gate_when_answering


def test_every_route_is_a_turn_or_not_and_none_is_forgotten(door):
    client, _, _ = door
    assert routes_of(client.app.routes) == set(TURNS) | NOT_TURNS
    assert not set(TURNS) & NOT_TURNS


@pytest.mark.parametrize("route", sorted(TURNS), ids=lambda r: r[1])
def test_every_turn_is_admitted_by_the_gate_before_the_answer_path(door, route):
    client, service, gate_when_answering = door
    response = TURNS[route](client)
    if not isinstance(response, tuple):
        assert response.status_code in (200, 303), response.text
    assert gate_when_answering and all(held >= 1 for held in gate_when_answering)
    assert service.gate.in_flight == 0  # and left once answered


def test_the_pages_that_are_not_turns_never_reach_the_answer_path(door):
    client, _, gate_when_answering = door
    for method, path in sorted(NOT_TURNS):
        if method == "GET" and "{" not in path:
            assert client.get(path).status_code < 500, path
    assert gate_when_answering == []


def test_a_caller_over_the_rate_limit_is_told_and_listened_to_again(fake_demo_index, tmp_path):
    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    settings = Settings(voice_webhook_secret=SECRET, rate_limit_per_minute=1, rate_limit_burst=1)
    with TestClient(create_app(lambda: answerer, settings)) as client:
        settled(client)
        first = TURNS[("POST", "/voice/jambonz/gather")](client).json()
        again = TURNS[("POST", "/voice/jambonz/gather")](client).json()
        other_call = _signed(client, "/voice/jambonz/gather", CALL | {"call_sid": "c-2", "speech": SPOKEN}).json()
        metrics = client.get("/metrics").text
    assert "86 euros" in first[0]["say"]["text"]
    assert [v["verb"] for v in again] == ["gather"] and "patienter" in again[0]["say"]["text"]
    assert "86 euros" in other_call[0]["say"]["text"]  # each call has its own limit
    assert 'guichet_rejected_total{reason="rate_limited"} 1.0' in metrics
    assert 'guichet_turns_total{channel="voice",outcome="answered"} 2.0' in metrics


def _gather_while_full(fake_demo_index, tmp_path, queue_seconds, freed_after=None):
    """A caller's words posted while every place of the gate is taken (one freed after ``freed_after`` seconds):
    the webhook's verbs and the metrics after it."""
    import threading

    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    settings = Settings(voice_webhook_secret=SECRET, voice_queue_seconds=queue_seconds)
    with TestClient(create_app(lambda: answerer, settings)) as client:
        settled(client)
        service = client.app.state.service
        service.gate.in_flight = service.gate.capacity  # every place taken by turns in progress
        if freed_after is not None:
            threading.Timer(freed_after, service.gate.leave).start()
        reply = TURNS[("POST", "/voice/jambonz/gather")](client)
        metrics = client.get("/metrics").text
        service.gate.in_flight = 0
    assert reply.status_code == 200
    return reply.json(), metrics


def test_a_full_server_tells_the_caller_instead_of_hanging_up(fake_demo_index, tmp_path):
    busy, _ = _gather_while_full(fake_demo_index, tmp_path, queue_seconds=0.3)
    assert "très sollicité" in busy[0]["say"]["text"]


def test_a_callers_words_heard_while_full_wait_for_a_place_instead_of_being_lost(fake_demo_index, tmp_path):
    answered, metrics = _gather_while_full(fake_demo_index, tmp_path, queue_seconds=5, freed_after=0.5)
    assert "86 euros" in answered[0]["say"]["text"]  # answered, not asked to repeat
    assert 'guichet_rejected_total{reason="over_capacity"}' not in metrics
