"""Speech-to-text for the voice gateway (jambonz custom STT over WebSocket): the protocol, the session bounds and
the capacity limit, with a fake recognizer and a detector for which loud audio is speech. The real Whisper and
Silero VAD are proven in tests/e2e/test_phone_speech.py."""

import json
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

from bot.engines.recognition import EndOfSpeech, Transcript
from bot.phone.listening import ProtocolError, parse_start
from bot.settings import Settings
from bot.web import service as service_module
from bot.web.app import create_app
from tests.conftest import fake_answerer
from tests.unit.test_api import settled

KEY = "stt-key"
RATE = 8000
START = {"type": "start", "language": "fr-FR", "format": "raw", "encoding": "LINEAR16", "sampleRateHz": RATE}


class FakeRecognizer:
    """Says how many seconds it heard, and what vocabulary it was given."""

    name = "fake"
    busy = False
    heard: list[float] = []
    vocabulary: list[tuple[str, ...]] = []

    def __init__(self, *_args):
        pass

    def transcribe(self, audio, vocabulary=()):
        FakeRecognizer.heard.append(len(audio) / 16000)
        FakeRecognizer.vocabulary.append(tuple(vocabulary))
        return Transcript(f"{len(audio) / 16000:.1f} secondes", 0.9)


def loud(window):
    """A stand-in for Silero: a block is speech (probability 1) when it is loud, else quiet (0)."""
    blocks = window.reshape(-1, EndOfSpeech.BLOCK)
    return (np.sqrt((blocks**2).mean(axis=1)) > 0.1).astype(np.float32)


class LoudIsSpeech(EndOfSpeech):
    def __init__(self, timing):
        super().__init__(timing, vad=loud)


def frames(seconds, loud_=True, frame_ms=20):
    """8 kHz LINEAR16 frames of a tone (speech, for the fake detector) or silence."""
    n = int(RATE * frame_ms / 1000)
    t = np.arange(int(RATE * seconds)) / RATE
    pcm = (np.sin(2 * math.pi * 300 * t) * (20000 if loud_ else 0)).astype("<i2").tobytes()
    return [pcm[i : i + 2 * n] for i in range(0, len(pcm), 2 * n)]


@pytest.fixture
def app(fake_demo_index, tmp_path, monkeypatch):
    monkeypatch.setattr(service_module, "WhisperRecognizer", FakeRecognizer)
    monkeypatch.setattr(service_module, "EndOfSpeech", LoudIsSpeech)
    FakeRecognizer.heard, FakeRecognizer.vocabulary = [], []
    answerer = fake_answerer(fake_demo_index, "{}", tmp_path)

    def make(**settings):
        config = {"speech_api_key": KEY, "stt_max_streams": 20, "stt_idle_seconds": 2.0} | settings
        return TestClient(create_app(lambda: answerer, Settings(**config)))

    return make


@pytest.fixture
def client(app):
    with app() as client:
        settled(client)
        yield client


def _connect(client, key=KEY):
    return client.websocket_connect("/speech/stt", headers={"Authorization": f"Bearer {key}"} if key else {})


def _speak(ws, seconds, then_silence=1.0):
    for frame in frames(seconds) + frames(then_silence, loud_=False):
        ws.send_bytes(frame)


def test_a_sentence_then_silence_gets_one_final_transcript_and_stop_closes(client):
    with _connect(client) as ws:
        ws.send_text(json.dumps(START))
        _speak(ws, 1.5)
        message = ws.receive_json()
        assert message["type"] == "transcription" and message["is_final"] is True
        assert message["alternatives"][0] == {"transcript": message["alternatives"][0]["transcript"], "confidence": 0.9}
        assert 1.5 <= FakeRecognizer.heard[0] <= 2.6  # the speech and the quiet that ended it, nothing before
        ws.send_text(json.dumps({"type": "stop"}))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1000


def test_the_town_vocabulary_and_the_gateway_hints_bias_recognition(client):
    with _connect(client) as ws:
        ws.send_text(json.dumps(START | {"options": {"hints": ["rue des Tilleuls"]}}))
        _speak(ws, 1.0)
        ws.receive_json()
    vocabulary = FakeRecognizer.vocabulary[0]
    assert vocabulary[0] == "rue des Tilleuls"  # the gateway's hints first, then the town's
    assert "la mairie de Valbourg-sur-Loire" in vocabulary
    assert any("passeport" in word.lower() for word in vocabulary)  # a document title of the demo corpus


def test_stop_in_the_middle_of_a_sentence_transcribes_what_was_said(client):
    with _connect(client) as ws:
        ws.send_text(json.dumps(START))
        for frame in frames(1.0):
            ws.send_bytes(frame)
        ws.send_text(json.dumps({"type": "stop"}))
        assert ws.receive_json()["is_final"] is True


def test_interim_results_only_when_asked(client):
    with _connect(client) as ws:
        ws.send_text(json.dumps(START | {"interimResults": True}))
        _speak(ws, 3.0)
        messages = [ws.receive_json() for _ in range(2)]
        while messages[-1]["is_final"] is False:
            messages.append(ws.receive_json())
    assert [m["is_final"] for m in messages][-1] is True and messages[0]["is_final"] is False
    with _connect(client) as ws:
        ws.send_text(json.dumps(START))
        _speak(ws, 3.0)
        assert ws.receive_json()["is_final"] is True


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_the_upgrade_needs_the_key(client, key):
    with pytest.raises(WebSocketDisconnect) as refused, _connect(client, key) as ws:
        ws.receive_json()
    assert refused.value.code == 1008


def test_without_a_key_speech_to_text_is_off(app):
    with app(speech_api_key="") as client, pytest.raises(WebSocketDisconnect), _connect(client, "anything") as ws:
        ws.receive_json()


def _error_after(client, *messages):
    with _connect(client) as ws:
        for message in messages:
            ws.send_bytes(message) if isinstance(message, bytes) else ws.send_text(message)
        reply = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert reply["type"] == "error" and closed.value.code == 1008
    return reply["error"]


@pytest.mark.parametrize(
    ("start", "says"),
    [
        ("not json", "illisible"),
        ("[1, 2]", "illisible"),
        (json.dumps({"type": "stop"}), "start"),
        (json.dumps(START | {"language": "de-DE"}), "Langue"),
        (json.dumps(START | {"sampleRateHz": 44100}), "Fréquence"),
        (json.dumps(START | {"encoding": "MULAW"}), "Encodage"),
    ],
)
def test_a_malformed_start_gets_an_error_that_says_why(client, start, says):
    assert says in _error_after(client, start)


def test_audio_before_start_is_an_error(client):
    assert "avant" in _error_after(client, frames(0.1)[0])


def test_an_empty_frame_is_nothing_heard_not_a_crash(client):
    """Found by the fuzzer below: an empty binary frame broke the stream (the resampling filter refused it)."""
    with _connect(client) as ws:
        ws.send_text(json.dumps(START))
        ws.send_bytes(b"")
        _speak(ws, 1.0)
        assert ws.receive_json()["is_final"] is True


def test_a_frame_of_odd_length_is_an_error(client):
    assert "LINEAR16" in _error_after(client, json.dumps(START), b"\x00\x01\x02")


def test_a_caller_who_never_stops_gets_a_transcript_at_the_limit_then_an_error(app):
    with app(stt_max_utterance_seconds=2.0, stt_max_session_seconds=5.0) as client:
        settled(client)
        with _connect(client) as ws:
            ws.send_text(json.dumps(START))
            for frame in frames(4.5):
                ws.send_bytes(frame)
            finals = [ws.receive_json(), ws.receive_json()]
            for frame in frames(1.0):
                ws.send_bytes(frame)
            reply = ws.receive_json()
            with pytest.raises(WebSocketDisconnect):
                ws.receive_json()
    assert [m["is_final"] for m in finals] == [True, True]
    assert FakeRecognizer.heard == [pytest.approx(2.0, abs=0.1)] * 2
    assert reply["type"] == "error" and "trop longue" in reply["error"]


def test_an_idle_session_is_closed_with_an_error(app):
    with app(stt_idle_seconds=0.5) as client:
        settled(client)
        with _connect(client) as ws:
            ws.send_text(json.dumps(START))
            reply = ws.receive_json()
    assert reply["type"] == "error" and "Aucun message" in reply["error"]


def test_a_socket_dropped_mid_sentence_frees_its_place(client):
    service = client.app.state.service
    with _connect(client) as ws:
        ws.send_text(json.dumps(START))
        for frame in frames(0.5):
            ws.send_bytes(frame)
    with _connect(client) as ws:  # the next session is heard normally
        ws.send_text(json.dumps(START))
        _speak(ws, 1.0)
        assert ws.receive_json()["is_final"] is True
    assert service.listeners.in_flight == 0 and FakeRecognizer.heard == [pytest.approx(FakeRecognizer.heard[0])]


def test_twenty_callers_at_once_are_heard_and_one_more_gets_a_clear_error(client):
    opened = []
    contexts = [_connect(client) for _ in range(20)]
    try:
        for context in contexts:
            ws = context.__enter__()
            ws.send_text(json.dumps(START))
            opened.append(ws)
        with _connect(client) as extra:
            reply = extra.receive_json()
            with pytest.raises(WebSocketDisconnect) as closed:
                extra.receive_json()
        assert reply["type"] == "error" and "Capacité atteinte" in reply["error"] and closed.value.code == 1013
        for ws in opened:
            _speak(ws, 0.5)
        assert all(ws.receive_json()["is_final"] for ws in opened)
        assert "guichet_speech_sessions 20.0" in client.get("/metrics").text
    finally:
        for context in contexts:
            context.__exit__(None, None, None)
    metrics = client.get("/metrics").text
    assert 'guichet_speech_errors_total{reason="over_capacity"} 1.0' in metrics
    assert 'guichet_speech_transcripts_total{kind="final"} 20.0' in metrics and "guichet_speech_sessions 0.0" in metrics


def test_start_message_parsing_keeps_hints_given_as_phrases():
    start = parse_start(json.dumps(START | {"hints": [{"phrase": "encombrants"}, "CNI"]}))
    assert start.hints == ("encombrants", "CNI") and start.rate == RATE and start.interim is False
    with pytest.raises(ProtocolError):
        parse_start(json.dumps(START | {"sampleRateHz": "8000"}))


def test_a_long_silence_before_speech_is_not_kept_nor_counted_against_the_caller(app):
    with app(stt_max_utterance_seconds=3.0) as client:
        settled(client)
        with _connect(client) as ws:
            ws.send_text(json.dumps(START))
            for frame in frames(6.0, loud_=False):  # the caller thinks before speaking
                ws.send_bytes(frame)
            _speak(ws, 1.0)
            assert ws.receive_json()["is_final"] is True
    assert FakeRecognizer.heard[0] < 3.0  # not cut at the utterance limit by the silence before it


def test_a_tampered_speech_model_turns_recognition_off_with_a_reason_and_the_rest_runs(fake_demo_index, tmp_path):
    folder = tmp_path / "whisper-base"  # the catalogue's name, not its content
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"not the weights")
    answerer = fake_answerer(fake_demo_index, "{}", tmp_path)
    settings = Settings(speech_api_key=KEY, stt_model_path=folder)
    with TestClient(create_app(lambda: answerer, settings)) as client:
        settled(client)
        assert client.get("/readyz").status_code == 200
        with _connect(client) as ws:
            reply = ws.receive_json()
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
    assert reply["type"] == "error" and "sha256" in reply["error"] and "--speech" in reply["error"]
    assert closed.value.code == 1013


def test_without_the_speech_model_recognition_says_how_to_fetch_it(fake_demo_index, tmp_path):
    answerer = fake_answerer(fake_demo_index, "{}", tmp_path)
    settings = Settings(speech_api_key=KEY, stt_model_path=tmp_path / "nowhere")
    with TestClient(create_app(lambda: answerer, settings)) as client:
        settled(client)
        with _connect(client) as ws:
            reply = ws.receive_json()
    assert "guichet models fetch --speech" in reply["error"]


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    messages=st.lists(
        st.one_of(
            st.binary(max_size=400),
            st.text(max_size=60),
            st.sampled_from(
                [json.dumps(START), json.dumps({"type": "stop"}), json.dumps(START | {"sampleRateHz": 16000})]
            ),
        ),
        max_size=8,
    ),
    drop=st.booleans(),
)
def test_any_sequence_of_frames_gets_transcripts_or_a_clear_error_never_a_crash(client, messages, drop):
    """Malformed frames, wrong sample rates, text where audio is due, a socket dropped mid-sentence: the server
    answers with transcripts or one French error and a close, and the next caller is heard."""
    with _connect(client) as ws:
        ws.send_text(json.dumps(START))
        for message in messages:
            ws.send_bytes(message) if isinstance(message, bytes) else ws.send_text(message)
        if not drop:
            ws.send_text(json.dumps({"type": "stop"}))
            try:
                while True:
                    reply = ws.receive_json()
                    assert reply["type"] in ("transcription", "error"), reply
                    if reply["type"] == "error":
                        assert isinstance(reply["error"], str) and reply["error"]
            except WebSocketDisconnect:
                pass
    assert client.app.state.service.listeners.in_flight == 0 or drop
