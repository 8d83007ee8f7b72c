"""A realistic phone call replayed against the real server (`guichet serve`) with the real models."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.phone import jambonz
from bot.phone.dialog import VoiceDialog
from bot.settings import Settings, load_yaml
from tests.e2e.conftest import running_server
from tests.jambonz_spec import rejected

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret"


@pytest.fixture(scope="module")
def server(real_demo_index):
    with running_server(real_demo_index, {"GUICHET_VOICE_WEBHOOK_SECRET": SECRET}) as (base, output):
        yield base
    assert "+33612345678" not in output() and "612345678" not in output()  # the caller's number is never logged


def _post(base, path, payload):
    body = json.dumps(payload).encode()
    response = httpx.post(
        f"{base}{path}",
        content=body,
        timeout=120,
        headers={"Content-Type": "application/json", "Jambonz-Signature": jambonz.sign(body, SECRET)},
    )
    assert response.status_code == 200, response.text
    return response.json()


def _speech(text, confidence):
    return {
        "reason": "speechDetected",
        "speech": {"is_final": True, "alternatives": [{"transcript": text, "confidence": confidence}]},
    }


def test_a_call_from_welcome_to_handoff(server):
    call = {"call_sid": "e2e-call-1", "from": "+33612345678", "to": "+33199001234", "direction": "inbound"}
    welcome = _post(server, "/voice/jambonz/call", call | {"call_status": "ringing"})
    assert [v["verb"] for v in welcome] == ["gather"]  # the demo town leaves speech to the jambonz application
    assert "intelligence artificielle" in welcome[0]["say"]["text"]

    answer = _post(server, "/voice/jambonz/gather", call | _speech("combien coûte un passeport pour un adulte", 0.91))
    spoken = answer[0]["say"]["text"]
    assert answer[0]["verb"] == "gather" and "86 euros" in spoken and "€" not in spoken and "http" not in spoken
    assert len(spoken.split()) < 70

    misheard = _post(server, "/voice/jambonz/gather", call | _speech("euh le truc pour le", 0.21))
    assert misheard[0]["verb"] == "gather" and "répéter" in misheard[0]["say"]["text"]
    silent = _post(server, "/voice/jambonz/gather", call | {"reason": "timeout"})
    assert "Tapez 1" in silent[0]["say"]["text"]

    handoff = _post(server, "/voice/jambonz/gather", call | {"reason": "dtmfDetected", "digits": "0"})
    town = load_yaml(Settings().town_file)
    if VoiceDialog(None, None, town["voice"]).is_open():
        assert [v["verb"] for v in handoff] == ["say", "dial"]
        assert handoff[1]["target"][0]["number"] == town["voice"]["transfer_to"]
    else:
        assert [v["verb"] for v in handoff] == ["say", "hangup"] and "fermé" in handoff[0]["text"]
    assert _post(server, "/voice/jambonz/status", call | {"call_status": "completed"}) == {}
    arrays = {"welcome": welcome, "answer": answer, "misheard": misheard, "silent": silent, "handoff": handoff}
    assert rejected(arrays) == {}  # what a real jambonz would accept


def test_unsigned_webhook_is_rejected(server):
    response = httpx.post(f"{server}/voice/jambonz/call", json={"call_sid": "x"}, timeout=10)
    assert response.status_code == 401
