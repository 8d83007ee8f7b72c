"""One caller heard by Guichet as jambonz's custom speech-to-text vendor, whatever carries the messages.

jambonz opens a WebSocket, sends a ``start`` control message (language, ``LINEAR16`` encoding, sample rate, whether
it wants interim results), then binary frames of PCM, then ``stop``. ``Listening`` checks those messages, collects
the audio of the current utterance, and says when a transcript is due: an interim one while the caller speaks (if
asked), a final one when they have finished (voice activity detection) or spoke for too long. Every session is
bounded in audio and in time; the transport (``bot/web/routes/speech.py``) bounds idleness.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from bot.engines.recognition import EndOfSpeech, Upsampler, as_float

RATES = (8000, 16000)


class ProtocolError(Exception):
    """A message the session cannot take; its text goes back to the gateway in an ``error`` message."""


@dataclass(frozen=True)
class ListeningLimits:
    """The bounds of a session, from the ``GUICHET_STT_*`` settings."""

    max_utterance_seconds: float  # a caller who never stops talking gets a final transcript here
    max_session_seconds: float  # audio received in one session, all utterances together
    idle_seconds: float  # no message for this long ends the session (enforced by the transport)
    interim_every_seconds: float = 1.0  # of new speech between two interim transcripts


class Due(Enum):
    NOTHING = "nothing"
    INTERIM = "interim"
    FINAL = "final"


@dataclass(frozen=True)
class Start:
    language: str
    rate: int
    interim: bool
    hints: tuple[str, ...]


def town_vocabulary(town: dict[str, Any], titles: Iterable[str]) -> list[str]:
    """The words recognition should expect, most telling first: the commune's name, the hints the town lists for
    its recognizer (``voice.speech.recognizer.hints``), then its documents' titles, the most covered first.

    >>> town_vocabulary({"town_name": "Valbourg", "voice": {"speech": {"recognizer": {"hints": ["CNI"]}}}},
    ...                 ["Cimetière", "État civil", "État civil"])
    ['Valbourg', 'CNI', 'État civil', 'Cimetière']
    """
    recognizer = ((town.get("voice") or {}).get("speech") or {}).get("recognizer") or {}
    hints = [str(h) for h in recognizer.get("hints") or []]
    name = str(town.get("town_name") or "")
    return [w for w in (name, *hints, *(title for title, _ in Counter(titles).most_common())) if w]


def parse_start(text: str) -> Start:
    """The ``start`` control message, or ``ProtocolError`` saying what is wrong with it.

    >>> parse_start('{"type": "start", "language": "fr-FR", "format": "raw", "encoding": "LINEAR16", '
    ...             '"sampleRateHz": 8000, "interimResults": true}')
    Start(language='fr-FR', rate=8000, interim=True, hints=())
    >>> parse_start('{"type": "start", "language": "en-US", "sampleRateHz": 8000}')
    Traceback (most recent call last):
    bot.phone.listening.ProtocolError: Langue non prise en charge : en-US (seul le français est reconnu).
    """
    message = _control(text)
    if message.get("type") != "start":
        raise ProtocolError("Le premier message doit être « start ».")
    language = str(message.get("language") or "fr-FR")
    if not language.lower().startswith("fr"):
        raise ProtocolError(f"Langue non prise en charge : {language} (seul le français est reconnu).")
    encoding = str(message.get("encoding") or "LINEAR16")
    if encoding.upper() != "LINEAR16":
        raise ProtocolError(f"Encodage non pris en charge : {encoding} (LINEAR16 attendu).")
    rate = message.get("sampleRateHz", 8000)
    if rate not in RATES:
        raise ProtocolError(f"Fréquence d'échantillonnage non prise en charge : {rate} (8000 ou 16000 Hz).")
    options = message["options"] if isinstance(message.get("options"), dict) else {}
    hints = message.get("hints") or options.get("hints") or []
    if not isinstance(hints, list):
        hints = []
    words = tuple(str(h.get("phrase", "")) if isinstance(h, dict) else str(h) for h in hints[:100])
    return Start(language, int(rate), bool(message.get("interimResults", False)), words)


def expect_stop(text: str) -> None:
    """The ``stop`` control message passes; any other control message after ``start`` is an error."""
    message = _control(text)
    if message.get("type") != "stop":
        raise ProtocolError(f"Message de contrôle inattendu : {str(message.get('type'))[:40]!r}.")


def _control(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError:
        raise ProtocolError("Message de contrôle illisible : JSON attendu.") from None
    if not isinstance(message, dict):
        raise ProtocolError("Message de contrôle illisible : objet JSON attendu.")
    return message


def transcription(text: str, confidence: float, final: bool, language: str) -> dict[str, Any]:
    """The message jambonz reads a transcript from."""
    alternative = {"transcript": text, "confidence": confidence}
    return {"type": "transcription", "is_final": final, "alternatives": [alternative], "language": language}


def error(message: str) -> dict[str, Any]:
    return {"type": "error", "error": message}


class Listening:
    """The audio of one session after its ``start``: what it has heard, and which transcript is due."""

    def __init__(
        self,
        start: Start,
        vocabulary: Sequence[str],
        limits: ListeningLimits,
        detector: Callable[[], EndOfSpeech],
    ):
        self.start, self.limits, self._detector = start, limits, detector
        self.vocabulary = (*start.hints, *vocabulary)
        self.heard_seconds = 0.0
        self.upsampler = Upsampler(start.rate)  # one filter for the whole session, so frames join seamlessly
        self.utterance = detector()
        self._interim_at = 0.0

    def hear(self, pcm: bytes) -> Due:
        """Take one binary frame; what is due now."""
        if len(pcm) % 2:
            raise ProtocolError("Trame audio invalide : LINEAR16 attendu (échantillons de 2 octets).")
        self.heard_seconds += len(pcm) / 2 / self.start.rate
        if self.heard_seconds > self.limits.max_session_seconds:
            raise ProtocolError(f"Session trop longue : plus de {self.limits.max_session_seconds:.0f} s d'audio.")
        self.utterance.feed(self.upsampler(as_float(pcm)))
        if self.utterance.ended or self.utterance.seconds >= self.limits.max_utterance_seconds:
            return Due.FINAL if self.utterance.started else self._restart()
        if (
            self.start.interim
            and self.utterance.started
            and self.utterance.seconds - self._interim_at >= self.limits.interim_every_seconds
        ):
            self._interim_at = self.utterance.seconds
            return Due.INTERIM
        return Due.NOTHING

    def audio(self) -> np.ndarray:
        """The current utterance so far."""
        return self.utterance.samples

    def take(self) -> np.ndarray | None:
        """The finished utterance (None if nobody spoke in it); listening goes on with a new one."""
        samples = self.utterance.samples if self.utterance.started else None
        self._restart()
        return samples

    def _restart(self) -> Due:
        """Noise that never became speech is dropped rather than kept growing."""
        self.utterance = self._detector()
        self._interim_at = 0.0
        return Due.NOTHING
