"""Text-to-speech for the voice gateway: the HTTP contract with a fake engine, the phone formats, the cache."""

import io
import logging
import math
import struct
import wave

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from bot.engines import speech
from bot.engines.speech import Audio, SynthesisError, for_the_phone
from bot.settings import Settings
from bot.web import service as service_module
from bot.web.app import create_app
from tests.conftest import fake_answerer
from tests.unit.test_api import settled

KEY = "tts-key"
WELCOME_FRAGMENT = "intelligence artificielle"


class ToneSynthesizer:
    """A 440 Hz tone lasting 50 ms per character, at espeak-ng's own rate (22,050 Hz)."""

    name = "tone"
    calls: list[str] = []
    fails_on: str | None = "échec"

    def __init__(self, *_args):
        pass

    def synthesize(self, text, voice=None, ssml=False):
        if self.fails_on and self.fails_on in text:
            raise SynthesisError("engine exploded")
        ToneSynthesizer.calls.append(text)
        t = np.arange(int(22050 * 0.05 * len(text))) / 22050
        return Audio((np.sin(2 * math.pi * 440 * t) * 8000).astype("<i2").tobytes(), 22050)


@pytest.fixture
def client(fake_demo_index, tmp_path, monkeypatch):
    monkeypatch.setattr(service_module, "EspeakSynthesizer", ToneSynthesizer)
    ToneSynthesizer.calls = []
    answerer = fake_answerer(fake_demo_index, "{}", tmp_path)
    with TestClient(create_app(lambda: answerer, Settings(speech_api_key=KEY))) as client:
        settled(client)
        yield client


def _tts(client, text, key=KEY, accept="audio/mpeg", **extra):
    headers = {"Authorization": f"Bearer {key}", "Accept": accept}
    return client.post(
        "/speech/tts", json={"language": "fr-FR", "type": "text", "text": text, **extra}, headers=headers
    )


def test_speech_is_mp3_at_the_phone_rate_and_lasts_as_long_as_the_text(client):
    text = "La mairie est ouverte le lundi matin."  # 37 characters: 1.85 s of tone
    response = _tts(client, text)
    assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
    samples, rate = soundfile.read(io.BytesIO(response.content))
    assert rate == 8000
    assert 1.85 <= len(samples) / rate <= 1.85 + 0.25  # MP3 adds the encoder's delay and a partial last frame
    assert np.sqrt(np.mean(samples**2)) > 0.1  # a tone, not silence


def test_wav_and_l16_when_the_gateway_asks_for_them(client):
    wav = _tts(client, "Bonjour", accept="audio/wav")
    with wave.open(io.BytesIO(wav.content)) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        frames = audio.readframes(audio.getnframes())
    l16 = _tts(client, "Bonjour", accept="audio/L16;rate=8000")
    assert l16.headers["content-type"] == "audio/l16;rate=8000"
    big_endian = struct.unpack(f">{len(l16.content) // 2}h", l16.content)
    assert list(big_endian) == list(struct.unpack(f"<{len(frames) // 2}h", frames))


def test_fixed_phrases_are_synthesized_once_other_texts_every_time(client):
    welcome = client.app.state.service.dialog.fixed_phrases()[0]
    assert WELCOME_FRAGMENT in welcome
    first, second = _tts(client, welcome), _tts(client, welcome)
    assert (first.headers["x-guichet-cache"], second.headers["x-guichet-cache"]) == ("miss", "hit")
    assert first.content == second.content
    answer = "Un passeport pour un adulte coûte 86 euros."
    assert [_tts(client, answer).headers["x-guichet-cache"] for _ in range(2)] == ["miss", "miss"]
    assert ToneSynthesizer.calls == [welcome, answer, answer]


@pytest.mark.parametrize("key, status", [("wrong", 401), ("", 401)])
def test_the_speech_service_needs_its_key(client, key, status):
    response = _tts(client, "Bonjour", key=key)
    assert response.status_code == status and "error" in response.json()


def test_without_a_key_the_speech_service_is_off(fake_demo_index, tmp_path):
    answerer = fake_answerer(fake_demo_index, "{}", tmp_path)
    with TestClient(create_app(lambda: answerer, Settings())) as client:
        settled(client)
        response = _tts(client, "Bonjour")
    assert response.status_code == 503 and "GUICHET_SPEECH_API_KEY" in response.json()["error"]


@pytest.mark.parametrize(
    "body",
    [{"text": ""}, {"text": "Hello", "language": "en-US"}, {"text": "Bonjour", "voice": "v" * 65}, {"type": "x"}],
)
def test_a_bad_request_gets_a_french_message(client, body):
    response = client.post("/speech/tts", json={"text": "Bonjour"} | body, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 422 and "synthèse vocale" in response.json()["error"]


def test_an_engine_failure_is_a_clear_error_and_the_text_is_not_logged(client, caplog):
    with caplog.at_level(logging.WARNING):
        response = _tts(client, "Texte secret en échec")
    assert response.status_code == 500 and response.json() == {"error": "La synthèse vocale a échoué pour ce texte."}
    assert "engine exploded" in caplog.text and "secret" not in caplog.text


def test_resampling_keeps_a_tone_below_the_new_nyquist_and_removes_one_above():
    t = np.arange(22050) / 22050

    def tone(hz):
        return Audio((np.sin(2 * math.pi * hz * t) * 10000).astype("<i2").tobytes(), 22050)

    def rms(audio):
        samples = np.frombuffer(audio.pcm, dtype="<i2")[800:-800].astype(float)  # away from the filter's edges
        return np.sqrt(np.mean(samples**2))

    kept, removed = speech.resampled(tone(1000), 8000), speech.resampled(tone(6000), 8000)
    assert kept.rate == 8000 and kept.seconds == pytest.approx(1.0)
    assert rms(kept) == pytest.approx(10000 / math.sqrt(2), rel=0.05)
    assert rms(removed) < 200  # 6 kHz cannot exist at 8 kHz: filtered out, not folded back to 2 kHz


def test_mp3_of_silence_decodes_to_silence():
    samples, rate = soundfile.read(io.BytesIO(for_the_phone(Audio(b"\x00\x00" * 8000, 8000), "mp3")))
    assert rate == 8000 and np.abs(samples).max() < 0.01
