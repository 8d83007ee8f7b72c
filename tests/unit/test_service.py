"""The service around the answer path: sessions, streaming, feedback, limits, CORS, metrics, widget files."""

import datetime as dt
import json
import re
import threading
import time

import pytest
from fastapi.testclient import TestClient

from bot.answer.steps.answer_composer import AnswerComposer
from bot.engines.llm import Completion
from bot.settings import Settings
from bot.state.database import state_url
from bot.web.app import create_app
from bot.web.feedback import FeedbackStore
from tests.conftest import fake_answerer
from tests.unit.test_api import settled

PASSPORT = json.dumps({"source": "S1", "reponse": "Il faut prendre rendez-vous en mairie. Le passeport coûte 86 €."})


@pytest.fixture
def answerer(fake_demo_index, tmp_path):
    return fake_answerer(fake_demo_index, PASSPORT, tmp_path)


def service(tmp_path, **overrides) -> Settings:
    return Settings(feedback_dir=tmp_path / "feedback", staff_dir=tmp_path / "staff", **overrides)


def sse_events(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in lines:
            events.append((lines.get("event", "message"), json.loads(lines["data"])))
    return events


def test_a_follow_up_is_read_with_the_previous_question(answerer, tmp_path):
    with TestClient(create_app(lambda: answerer, service(tmp_path))) as client:
        settled(client)
        first = client.post("/api/v1/turn", json={"text": "prix du passeport majeur"}).json()
        second = client.post("/api/v1/turn", json={"text": "Et pour un mineur ?", "session_id": first["session_id"]})
        alone = client.post("/api/v1/turn", json={"text": "Et pour un mineur ?"})
    assert second.json()["session_id"] == first["session_id"] != alone.json()["session_id"]
    prompts = [call[-1]["content"] for call in answerer.step(AnswerComposer).model.calls]
    assert "prix du passeport majeur Et pour un mineur ?" in prompts[1]
    # Another session knows nothing of the first: only the first question and its follow-up carry it.
    assert sum("prix du passeport majeur" in p for p in prompts) == 2
    # The previous question is never echoed back: the public answer has no trace of how it was made.
    assert "prix du passeport majeur" not in second.text and set(second.json()) == {
        "answer",
        "outcome",
        "citations",
        "seconds",
        "session_id",
        "turn_id",
    }


def test_session_ids_are_minted_by_the_server(answerer, tmp_path):
    with TestClient(create_app(lambda: answerer, service(tmp_path))) as client:
        settled(client)
        first = client.post("/api/v1/turn", json={"text": "prix du passeport majeur", "session_id": "mine"}).json()
        guessed = client.post("/api/v1/turn", json={"text": "Et pour un mineur ?", "session_id": "mine"}).json()
    assert first["session_id"] != "mine" and len(first["session_id"]) >= 32
    assert guessed["session_id"] not in ("mine", first["session_id"])
    prompts = [call[-1]["content"] for call in answerer.step(AnswerComposer).model.calls]
    assert sum("prix du passeport majeur" in p for p in prompts) == 1  # the guessed id reached nothing


def test_sessions_expire_and_are_bounded():
    from bot.web.sessions import RecordedTurn, SessionStore

    now = [0.0]
    store = SessionStore(ttl_seconds=60, max_turns=2, max_sessions=2, clock=lambda: now[0])
    sid, session = store.open(None)
    for n in range(3):
        store.record(session, RecordedTurn(str(n), f"q{n}", "answered", [], "v1"))
    assert [t["question"] for t in session.history()] == ["q1", "q2"]
    now[0] = 61
    fresh_id, fresh = store.open(sid)
    assert fresh.turns == [] and fresh_id != sid  # expired: a fresh session under a new id
    store.open(None), store.open(None)
    assert len(store) == 2


def test_streaming_sends_the_draft_then_the_checked_answer(answerer, tmp_path):
    with TestClient(create_app(lambda: answerer, service(tmp_path))) as client:
        settled(client)
        response = client.post("/api/v1/turn/stream", json={"text": "prix du passeport majeur"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "meta" and kinds[-1] == "final" and "delta" in kinds
    draft = "".join(data["text"] for kind, data in events if kind == "delta")
    # The price is held back: it reaches the resident only once checked, in the final answer.
    assert draft.startswith("Il faut prendre rendez-vous en mairie.") and not re.search(r"[\d€]", draft)
    final = events[-1][1]
    assert "86 €" in final["answer"] and final["outcome"] == "answered" and final["citations"]
    assert final["turn_id"] == events[0][1]["turn_id"]


def test_feedback_is_stored_without_personal_data(answerer, tmp_path):
    with TestClient(create_app(lambda: answerer, service(tmp_path))) as client:
        settled(client)
        turn = client.post("/api/v1/turn", json={"text": "prix du passeport, je suis anne@exemple.fr"}).json()
        ids = {"session_id": turn["session_id"], "turn_id": turn["turn_id"]}
        useful = client.post("/api/v1/feedback", json={**ids, "useful": True, "reason": "no_visit_needed"})
        expired = client.post("/api/v1/feedback", json={"session_id": "x", "turn_id": "y", "useful": False})
        bad = client.post("/api/v1/feedback", json={**ids, "useful": False, "reason": "mon voisin"})
        metrics = client.get("/metrics").text
    assert useful.status_code == 201 and useful.json()["message"] == "Merci pour votre avis."
    assert expired.status_code == 201 and bad.status_code == 422
    records = FeedbackStore(state_url("", tmp_path / "staff"), 365).records(dt.date.min)
    assert records[0]["useful"] is True and records[0]["reason"] == "no_visit_needed"
    assert records[0]["outcome"] == "answered" and records[0]["sources"] == ["carte-identite-passeport.html"]
    assert records[1]["outcome"] is None
    text = json.dumps(records)
    assert "anne" not in text and turn["session_id"] not in text and "passeport, je" not in text
    assert 'guichet_feedback_total{useful="true"} 1.0' in metrics


def test_feedback_older_than_the_retention_is_deleted_for_every_worker(tmp_path):
    url = state_url("", tmp_path / "staff")
    for day in ("2026-07-31", "2026-09-22", "2026-09-23", "2026-11-22"):
        FeedbackStore(url, 60, today=lambda day=day: dt.date.fromisoformat(day)).add(True, "clear", "answered", [], "v")
    another_worker = FeedbackStore(url, retention_days=60, today=lambda: dt.date(2026, 11, 22))
    assert another_worker.purge() == 2  # more than 60 days old: 2026-09-22 and before
    assert [r["day"] for r in another_worker.records(dt.date.min)] == ["2026-09-23", "2026-11-22"]
    assert another_worker.purge() == 0


def test_a_client_asking_too_fast_gets_429_with_retry_after(answerer, tmp_path):
    settings = service(tmp_path, rate_limit_burst=2, rate_limit_per_minute=6)
    with TestClient(create_app(lambda: answerer, settings)) as client:
        settled(client)
        codes = [client.post("/api/v1/turn", json={"text": "prix du passeport"}).status_code for _ in range(3)]
        limited = client.post("/api/v1/turn", json={"text": "prix du passeport"})
    assert codes == [200, 200, 429]
    assert 1 <= int(limited.headers["Retry-After"]) <= 10 and "patienter" in limited.json()["error"]


def test_beyond_capacity_the_answer_is_a_fast_503(fake_demo_index, tmp_path):
    release = threading.Event()

    class SlowModel:
        name = "slow"

        def complete(self, messages, schema=None, max_tokens=160, on_text=None):
            release.wait(10)
            return Completion(PASSPORT, 10, 10, 0.1)

    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    answerer.step(AnswerComposer).model = SlowModel()
    settings = service(tmp_path, max_turns_in_progress=1, rate_limit_exempt="testclient")
    with TestClient(create_app(lambda: answerer, settings)) as client:
        settled(client)
        waiting = threading.Thread(target=client.post, args=("/api/v1/turn",), kwargs={"json": {"text": "passeport"}})
        waiting.start()
        for _ in range(100):
            if "guichet_turns_in_progress 1.0" in client.get("/metrics").text:
                break
            time.sleep(0.05)
        started = time.monotonic()
        full = client.post("/api/v1/turn", json={"text": "prix du passeport"})
        refused_in = time.monotonic() - started
        release.set()
        waiting.join()
        after = client.post("/api/v1/turn", json={"text": "prix du passeport"})
        metrics = client.get("/metrics").text
    assert full.status_code == 503 and int(full.headers["Retry-After"]) >= 1 and "sollicité" in full.json()["error"]
    assert refused_in < 2  # not queued behind the slow turn (generous bound: a unit test is no benchmark)
    assert after.status_code == 200
    assert 'guichet_rejected_total{reason="over_capacity"} 1.0' in metrics
    assert 'guichet_turns_total{channel="web",outcome="answered"} 2.0' in metrics


def test_an_oversized_body_is_refused_before_parsing(answerer, tmp_path):
    with TestClient(create_app(lambda: answerer, service(tmp_path, max_body_bytes=1000))) as client:
        settled(client)
        declared = client.post("/api/v1/turn", content=b'{"text": "' + b"a" * 2000 + b'"}')
        streamed = client.post(
            "/api/v1/turn",
            content=iter([b'{"text": "', b"a" * 600, b"a" * 600, b'"}']),
            headers={"Content-Type": "application/json"},
        )
    assert declared.status_code == 413 and "trop volumineux" in declared.json()["error"]
    assert streamed.status_code == 413


def test_cors_allows_only_the_configured_origins(answerer, tmp_path):
    settings = service(tmp_path, cors_origins="https://www.valbourg-sur-loire.fr")
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    with TestClient(create_app(lambda: answerer, settings)) as client:
        town = client.options("/api/v1/turn", headers={"Origin": "https://www.valbourg-sur-loire.fr", **preflight})
        other = client.options("/api/v1/turn", headers={"Origin": "https://ailleurs.example", **preflight})
    assert town.headers["access-control-allow-origin"] == "https://www.valbourg-sur-loire.fr"
    assert "access-control-allow-origin" not in other.headers


def test_the_widget_and_its_demo_page_are_served_from_the_service(answerer, tmp_path):
    with TestClient(create_app(lambda: answerer, service(tmp_path))) as client:
        settled(client)
        script, style, demo = client.get("/widget.js"), client.get("/widget.css"), client.get("/demo")
        config = client.get("/api/v1/widget/config").json()
    assert script.headers["content-type"].startswith("text/javascript") and "attachShadow" in script.text
    assert style.status_code == 200 and '<script src="widget.js"' in demo.text
    assert config["title"] == "Assistant de la mairie de Valbourg" and config["colors"]["primary"] == "#000091"
    assert "01 99 00 12 34" in config["contact"] and config["max_question_chars"] == 600
    for text in (script.text, style.text, demo.text):  # no third-party asset or CDN
        assert "https://" not in text.replace("https://assistant.example.fr", "")


def test_workers_starting_together_purge_unanswered_questions_without_crashing(tmp_path, monkeypatch):
    from pathlib import Path

    from bot.web.gaps import GapStore

    old = tmp_path / "lacunes-2020-01.jsonl"
    old.write_text("{}\n")
    listed = Path.glob

    def another_worker_was_faster(self, pattern):
        found = list(listed(self, pattern))
        old.unlink(missing_ok=True)  # the other worker deletes it between our listing and our delete
        return found

    monkeypatch.setattr(Path, "glob", another_worker_was_faster)
    assert GapStore(tmp_path, 60, today=lambda: dt.date(2026, 11, 22)).purge() == [old]
