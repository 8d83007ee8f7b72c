"""A realistic phone call replayed against the real server (`guichet serve`) with the real models."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
import soundfile

from bot.phone import jambonz
from bot.phone.dialog import VoiceDialog
from bot.settings import Settings, load_yaml
from tests.e2e.conftest import running_server
from tests.jambonz_spec import rejected

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret"
SPEECH_KEY = "e2e-speech-key"


@pytest.fixture(scope="module")
def server(real_demo_index):
    env = {"GUICHET_VOICE_WEBHOOK_SECRET": SECRET, "GUICHET_SPEECH_API_KEY": SPEECH_KEY}
    with running_server(real_demo_index, env) as (base, output):
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
    assert "touches" in silent[0]["say"]["text"] and "tapez 0" in silent[0]["say"]["text"]  # the keypad menu
    # The menu of config/town.yaml: the first topic's sections, as indexed; the third is answered with the real
    # models, from that document.
    read = _post(server, "/voice/jambonz/gather", call | {"reason": "dtmfDetected", "digits": "1"})
    assert read[0]["say"]["text"].startswith("les cartes d'identité et les passeports : Pour Prendre rendez-vous")
    assert "Pour Tarifs, tapez 3." in read[0]["say"]["text"]
    chosen = _post(server, "/voice/jambonz/gather", call | {"reason": "dtmfDetected", "digits": "3"})
    spoken = chosen[0]["say"]["text"]
    assert chosen[0]["verb"] == "gather" and "Source : Carte d'identité et passeport" in spoken
    assert "euros" in spoken or "gratuit" in spoken

    handoff = _post(server, "/voice/jambonz/gather", call | {"reason": "dtmfDetected", "digits": "0"})
    town = load_yaml(Settings().town_file)
    if VoiceDialog(None, None, {**town["voice"], "menu": None}).is_open():
        assert [v["verb"] for v in handoff] == ["say", "dial"]
        assert handoff[1]["target"][0]["number"] == town["voice"]["transfer_to"]
    else:
        assert [v["verb"] for v in handoff] == ["say", "hangup"] and "fermé" in handoff[0]["text"]
    assert _post(server, "/voice/jambonz/status", call | {"call_status": "completed"}) == {}
    arrays = {"welcome": welcome, "answer": answer, "misheard": misheard, "silent": silent, "handoff": handoff}
    arrays |= {"read": read, "chosen": chosen}
    assert rejected(arrays) == {}  # what a real jambonz would accept


def test_unsigned_webhook_is_rejected(server):
    response = httpx.post(f"{server}/voice/jambonz/call", json={"call_sid": "x"}, timeout=10)
    assert response.status_code == 401


def _spoken(base, text, voice="fr-fr"):
    """The MP3 the speech service returns for ``text``, decoded; and whether it came from the cache."""
    response = httpx.post(
        f"{base}/speech/tts",
        json={"language": "fr-FR", "voice": voice, "type": "text", "text": text},
        headers={"Authorization": f"Bearer {SPEECH_KEY}", "Accept": "audio/mpeg"},
        timeout=60,
    )
    assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg", response.text
    samples, rate = soundfile.read(io.BytesIO(response.content))
    return samples, rate, response.headers["x-guichet-cache"]


def test_the_call_is_spoken_by_the_towns_own_server(server):
    """espeak-ng on this server speaks the welcome (kept after the first call) and a real answer, as 8 kHz MP3."""
    call = {"call_sid": "e2e-call-2", "from": "+33612345678", "to": "+33199001234", "direction": "inbound"}
    welcome = _post(server, "/voice/jambonz/call", call | {"call_status": "ringing"})[0]["say"]["text"]
    samples, rate, cached = _spoken(server, welcome)
    words = len(welcome.split())
    assert rate == 8000 and cached == "miss"
    assert words / 4 < len(samples) / rate < words  # between 60 and 240 words a minute
    assert np.sqrt(np.mean(samples**2)) > 0.02  # speech, not silence
    assert _spoken(server, welcome)[2] == "hit"

    answer = _post(server, "/voice/jambonz/gather", call | _speech("combien coûte un passeport pour un adulte", 0.9))
    samples, rate, cached = _spoken(server, answer[0]["say"]["text"])
    assert rate == 8000 and cached == "miss" and len(samples) / rate > 2
    assert len(_spoken(server, "Bonjour.", voice="default")[0]) > 0  # a voice espeak-ng lacks: the town's voice


def test_a_badly_heard_question_is_confirmed_by_its_topic_then_answered(server):
    """A transcript the recognizer is unsure of (and misspelt: "identitée") lands on the town's "carte d'identité
    et passeport" by sound; a yes answers the question read with its topic, with the real models."""
    call = {"call_sid": "e2e-call-3", "from": "anonymous", "to": "+33199001234", "direction": "inbound"}
    _post(server, "/voice/jambonz/call", call | {"call_status": "ringing"})
    asked = _post(server, "/voice/jambonz/gather", call | _speech("la carte d'identitée pour un adulte combien", 0.32))
    assert asked[0]["verb"] == "gather" and "au sujet de" in asked[0]["say"]["text"]
    assert "identité" in asked[0]["say"]["text"]
    answer = _post(server, "/voice/jambonz/gather", call | {"reason": "dtmfDetected", "digits": "1"})
    assert answer[0]["verb"] == "gather" and "au sujet de" not in answer[0]["say"]["text"]
    assert "euros" in answer[0]["say"]["text"] or "gratuit" in answer[0]["say"]["text"]
    assert rejected({"asked": asked, "answer": answer}) == {}
