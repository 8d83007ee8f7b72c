"""Speech recognition on the town's own server: one narrow interface, faster-whisper behind it, and the end of
speech found by a voice activity detector.

A recognizer turns 16 kHz mono audio into French text with a confidence. ``EndOfSpeech`` watches a caller's audio
as it arrives and says when they have started, then finished, speaking. Both run on the CPU; no audio is kept.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.errors import ModelError
from bot.settings import Settings

RATE = 16_000  # what Whisper and Silero VAD take
PROMPT_CHARACTERS = 600  # Whisper reads at most 224 prompt tokens; French words are ~2–3 tokens each


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float  # 0–1


class Recognizer(Protocol):
    name: str

    @property
    def busy(self) -> bool: ...  # transcribing now (interim results are skipped rather than queued)

    def transcribe(self, audio: np.ndarray, vocabulary: Sequence[str] = ()) -> Transcript: ...


def resolve_recognizer_path(settings: Settings) -> Path:
    """The configured speech recognition model folder; the catalogue's Whisper by default."""
    from bot.engines.model_store import WHISPER_BASE

    return settings.stt_model_path or settings.models_dir / WHISPER_BASE.file


def as_float(pcm: bytes) -> np.ndarray:
    """Signed 16-bit little-endian PCM as float32 samples in [-1, 1).

    >>> as_float(b"\\x00\\x80\\x00\\x40").tolist()
    [-1.0, 0.5]
    """
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


class Upsampler:
    """A stream at 8 or 16 kHz brought to 16 kHz frame by frame, with the filter's state carried from one frame to
    the next: resampling each 20 ms frame on its own would put a click at every frame boundary.

    >>> up = Upsampler(8000)
    >>> tone = np.sin(2 * np.pi * 300 * np.arange(1600) / 8000).astype(np.float32)
    >>> whole = np.concatenate([up(tone[i : i + 160]) for i in range(0, 1600, 160)])
    >>> len(whole), round(float(np.abs(whole[400:]).max()), 2)
    (3200, 1.0)
    """

    TAPS = 63

    def __init__(self, rate: int):
        if RATE % rate:
            raise ValueError(f"{rate} Hz cannot be brought to {RATE} Hz by an integer factor")
        self.factor = RATE // rate
        if self.factor > 1:
            from scipy.signal import firwin, lfilter_zi

            self.taps = firwin(self.TAPS, 1 / self.factor) * self.factor
            self.state = lfilter_zi(self.taps, 1.0) * 0.0

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        if self.factor == 1 or not len(samples):  # an empty frame is nothing to filter (and scipy refuses it)
            return samples
        from scipy.signal import lfilter

        stuffed = np.zeros(len(samples) * self.factor, dtype=np.float64)
        stuffed[:: self.factor] = samples
        out, self.state = lfilter(self.taps, 1.0, stuffed, zi=self.state)
        result: np.ndarray = out.astype(np.float32)
        return result


def vocabulary_prompt(words: Sequence[str], limit: int = PROMPT_CHARACTERS) -> str:
    """The town's words as a prompt that biases recognition toward them, each once, in order, within ``limit``.

    >>> vocabulary_prompt(["Mairie de Valbourg", "état civil", "État civil", "encombrants"])
    'Mairie de Valbourg. état civil. encombrants.'
    >>> vocabulary_prompt(["a" * 10, "b" * 10], limit=15)
    'aaaaaaaaaa.'
    """
    kept: list[str] = []
    seen: set[str] = set()
    size = 0
    for word in words:
        word = " ".join(word.split()).strip(" .")
        if not word or word.casefold() in seen or size + len(word) + 2 > limit:
            continue
        seen.add(word.casefold())
        kept.append(word)
        size += len(word) + 2
    return ". ".join(kept) + "." if kept else ""


class WhisperRecognizer:
    """Whisper through faster-whisper (CTranslate2, int8 on the CPU), from a model folder on disk.

    One transcription at a time: a second caller's utterance waits for the first (two cores cannot do better by
    running both), and ``busy`` lets interim results be skipped instead of queued behind final ones.
    """

    name = "faster-whisper"

    def __init__(self, model_dir: Path, threads: int = 0, beam_size: int = 5):
        if not (model_dir / "model.bin").exists():
            raise ModelError(
                f"No speech recognition model in {model_dir}: run 'guichet models fetch --speech' "
                "or set GUICHET_STT_MODEL_PATH to a faster-whisper model folder."
            )
        from faster_whisper import WhisperModel  # only the speech service loads it

        from bot.engines.model_store import verify_recognizer_folder

        verify_recognizer_folder(model_dir)

        self.model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
        self.beam_size = beam_size
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def transcribe(self, audio: np.ndarray, vocabulary: Sequence[str] = ()) -> Transcript:
        with self._lock:
            segments, _ = self.model.transcribe(
                audio,
                language="fr",
                beam_size=self.beam_size,
                temperature=0.0,  # no retries at higher temperatures: they cost seconds and rarely help here
                initial_prompt=vocabulary_prompt(vocabulary) or None,
                condition_on_previous_text=False,
                without_timestamps=True,
                vad_filter=False,  # EndOfSpeech already cut the utterance
            )
            segments = list(segments)
        text = " ".join(s.text.strip() for s in segments).strip()
        return Transcript(text, confidence(segments))


LOOPING = 2.4  # Whisper's own threshold: text that compresses better than this repeats itself
DOUBTFUL = 0.2  # the confidence of a transcript recognition itself should not trust (the dialog asks again)


def confidence(segments: Sequence[Any]) -> float:
    """How sure recognition is, 0–1: the mean token probability, capped low when a segment loops ("il n'y a pas
    de boulot. il n'y a pas de boulot…"), the way Whisper itself flags a failed decoding.

    >>> from types import SimpleNamespace as S
    >>> confidence([S(avg_logprob=-0.2, compression_ratio=1.3)])
    0.819
    >>> confidence([S(avg_logprob=-0.2, compression_ratio=1.3), S(avg_logprob=-0.1, compression_ratio=3.1)])
    0.2
    >>> confidence([])
    0.0
    """
    if not segments:
        return 0.0
    probability = math.exp(sum(s.avg_logprob for s in segments) / len(segments))
    if any(s.compression_ratio > LOOPING for s in segments):
        probability = min(probability, DOUBTFUL)
    return round(min(1.0, probability), 3)


@dataclass(frozen=True)
class SpeechTiming:
    """When a caller counts as speaking, and as finished."""

    end_silence_ms: int = 800  # this much quiet after speech ends the utterance
    min_speech_ms: int = 200  # shorter sounds (a click, a breath) are not speech
    threshold: float = 0.5  # Silero's speech probability that starts speech…
    release: float = 0.35  # …and the one below which it counts as quiet again


class EndOfSpeech:
    """Watches one utterance's audio (16 kHz float samples, fed in any sizes) with Silero VAD, the model
    faster-whisper bundles. ``started`` once speech lasted ``min_speech_ms``; ``ended`` once ``end_silence_ms``
    of quiet followed it. The detector runs over a bounded window, so its cost does not grow with the call, and
    the quiet before speech is not kept beyond one window (Whisper invents words in long silences)."""

    BLOCK = 512  # Silero's frame at 16 kHz: 32 ms
    EVERY = 3 * BLOCK  # look again after ~100 ms of new audio, not on every 20 ms frame

    def __init__(self, timing: SpeechTiming = SpeechTiming(), vad: Any = None):
        if vad is None:
            from faster_whisper.vad import get_vad_model

            vad = get_vad_model()
        self.vad, self.timing = vad, timing
        self.started = self.ended = False
        self._buffer, self._size = np.zeros(RATE, dtype=np.float32), 0  # grows by doubling: frames are not copied
        self._checked = 0
        self._needed = math.ceil(timing.min_speech_ms * RATE / 1000 / self.BLOCK)  # blocks of speech to start
        self._quiet = math.ceil(timing.end_silence_ms * RATE / 1000 / self.BLOCK)  # blocks of quiet to end
        self._window = self.BLOCK * max(32, 2 * self._quiet)

    @property
    def samples(self) -> np.ndarray:
        """The utterance so far."""
        return self._buffer[: self._size]

    @property
    def seconds(self) -> float:
        return self._size / RATE

    def feed(self, samples: np.ndarray) -> None:
        end = self._size + len(samples)
        if end > len(self._buffer):
            self._buffer = np.concatenate(
                [self.samples, np.zeros(max(end, 2 * len(self._buffer)) - self._size, np.float32)]
            )
        self._buffer[self._size : end], self._size = samples, end
        usable = self._size // self.BLOCK * self.BLOCK
        if self.ended or usable - self._checked < self.EVERY:
            return
        self._checked = usable
        window = self._buffer[max(0, usable - self._window) : usable]
        speaking = self._speaking(np.asarray(self.vad(window)).reshape(-1))
        if not self.started and _longest_run(speaking) >= self._needed:
            self.started = True
        if self.started and len(speaking) >= self._quiet and not speaking[-self._quiet :].any():
            self.ended = True
        if not self.started and self._size > 2 * self._window:  # before speech, keep one window only
            drop = (self._size - self._window) // self.BLOCK * self.BLOCK
            self._buffer, self._size = self._buffer[drop : self._size].copy(), self._size - drop
            self._checked -= drop

    def _speaking(self, probabilities: np.ndarray) -> np.ndarray:
        """Per block, speech or not, with hysteresis: speech starts above ``threshold`` and lasts while above
        ``release``."""
        state, out = False, np.zeros(len(probabilities), dtype=bool)
        for i, p in enumerate(probabilities):
            state = p >= self.timing.threshold or (state and p >= self.timing.release)
            out[i] = state
        return out


def _longest_run(flags: np.ndarray) -> int:
    """
    >>> _longest_run(np.array([True, False, True, True, False]))
    2
    """
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best
