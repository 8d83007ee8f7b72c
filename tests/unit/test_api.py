"""The HTTP service through FastAPI's TestClient, with the fake-model answerer."""

import json
import logging
import time

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import IndexError_
from bot.settings import Settings
from bot.web.app import create_app
from tests.conftest import fake_answerer


@pytest.fixture
def answerer(fake_demo_index, tmp_path):
    reply = json.dumps({"source": "S1", "reponse": "Le passeport d'un majeur coûte 86 €."})
    return fake_answerer(fake_demo_index, reply, tmp_path)


@pytest.fixture
def service(tmp_path):
    """Service settings that write feedback under the test's folder."""
    return Settings(feedback_dir=tmp_path / "feedback")


def settled(client):
    """/readyz once loading has finished (models load in the background)."""
    for _ in range(200):
        response = client.get("/readyz")
        if response.json().get("reason") != "loading models and index":
            return response
        time.sleep(0.05)
    raise AssertionError("still loading after 10 s")


def test_turn_returns_the_answer_object(answerer, service):
    with TestClient(create_app(lambda: answerer, service)) as client:
        assert settled(client).json()["status"] == "ready"
        response = client.post("/api/v1/turn", json={"text": "prix du passeport majeur"})
    assert response.status_code == 200
    body = response.json()
    assert body["outcome"] == "answered" and body["session_id"] and body["turn_id"]
    assert body["citations"][0]["source"] == "carte-identite-passeport.html"


def test_bad_requests_get_a_french_message(answerer, service):
    with TestClient(create_app(lambda: answerer, service)) as client:
        settled(client)
        missing = client.post("/api/v1/turn", json={"question": "oups"})
        too_long = client.post("/api/v1/turn", json={"text": "a" * 5000})
    assert missing.status_code == 422 and "champ « text »" in missing.json()["error"]
    assert too_long.status_code == 422 and "trop long" in too_long.json()["error"]


def test_not_ready_when_the_index_is_missing(service):
    def broken():
        raise IndexError_("No index at /x — run 'guichet ingest' first.")

    with TestClient(create_app(broken, service)) as client:
        assert client.get("/healthz").status_code == 200
        ready = settled(client)
        turn = client.post("/api/v1/turn", json={"text": "bonjour"})
    assert ready.status_code == 503 and "guichet ingest" in ready.json()["reason"]
    # not "starting" forever: the resident is told it is unavailable, the IT person reads why in /readyz
    assert turn.status_code == 503 and turn.headers["Retry-After"] == "60"
    assert "momentanément indisponible" in turn.json()["error"]


def test_the_about_page_says_it_is_an_ai_and_what_is_kept(answerer, service):
    with TestClient(create_app(lambda: answerer, service)) as client:
        page = client.get("/a-propos")
    assert page.status_code == 200 and 'lang="fr"' in page.text
    assert "assistant automatique" in page.text and "aucune décision" in page.text
    assert "adresse IP n'est pas enregistrée" in page.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=700), channel=st.sampled_from(["web", "voice", "sms", ""]))
def test_any_input_gets_an_answer_or_a_clear_4xx_and_logs_nothing_personal(answerer, service, caplog, text, channel):
    email = "anne.dupont@exemple.fr"
    with TestClient(create_app(lambda: answerer, service)) as client:
        settled(client)
        with caplog.at_level(logging.DEBUG):
            response = client.post("/api/v1/turn", json={"text": f"{text} {email}", "channel": channel})
    assert response.status_code in (200, 422)
    if response.status_code == 422:
        assert "error" in response.json()
    else:
        assert email not in response.text
    assert email not in caplog.text
