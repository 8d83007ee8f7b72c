"""Speech synthesis on the town's own server: one narrow interface, espeak-ng or a Piper voice behind it, and the
phone formats.

A synthesizer turns French text (or SSML) into mono 16-bit PCM at its own sample rate; ``for_the_phone`` brings
that to the line's rate and packs it as MP3 (what jambonz's streaming playback asks for), WAV or raw L16.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import threading
import wave
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from bot.errors import ConfigError, IntegrityError

Format = Literal["mp3", "wav", "l16"]
CONTENT_TYPES: dict[Format, str] = {"mp3": "audio/mpeg", "wav": "audio/wav", "l16": "audio/l16"}
PHONE_RATE = 8000
MP3_KBPS = 32  # plenty for 8 kHz speech


@dataclass(frozen=True)
class Audio:
    """Mono signed 16-bit little-endian PCM."""

    pcm: bytes
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.rate


class Synthesizer(Protocol):
    name: str

    def synthesize(self, text: str, voice: str | None = None, ssml: bool = False) -> Audio: ...


class SynthesisError(RuntimeError):
    """The engine could not speak this text (its message is for the log, never for a caller)."""


class EspeakSynthesizer:
    """Debian's ``espeak-ng``: robotic but instant, and always available (``apt-get install espeak-ng``).

    Text goes in on stdin, never on the command line, so no text can become an option.
    """

    name = "espeak-ng"

    def __init__(self, voice: str = "fr-fr", words_per_minute: int = 160, timeout_s: float = 30.0):
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise ConfigError(
                "Speech synthesis needs espeak-ng: install it (apt-get install espeak-ng) or turn the speech "
                "service off (unset GUICHET_SPEECH_API_KEY)."
            )
        self.binary, self.words_per_minute, self.timeout_s = binary, words_per_minute, timeout_s
        self.voices = self._french_voices()
        if voice not in self.voices:
            raise ConfigError(f"GUICHET_SPEECH_VOICE={voice!r} is not an espeak-ng French voice here: {self.voices}.")
        self.voice = voice

    def _french_voices(self) -> list[str]:
        """The French voices espeak-ng can speak here (its MBROLA voices need packages we do not install)."""
        done = subprocess.run([self.binary, "--voices=fr"], capture_output=True, text=True, timeout=10, check=False)
        rows = [line.split() for line in done.stdout.splitlines()[1:]]
        return sorted({row[1] for row in rows if len(row) >= 5 and not row[4].startswith("mb/")})

    def synthesize(self, text: str, voice: str | None = None, ssml: bool = False) -> Audio:
        """Speak ``text``; a voice this engine does not have (a gateway's default name…) falls back to the town's."""
        voice = voice if voice in self.voices else self.voice
        options = ["-v", voice, "-s", str(self.words_per_minute), "--stdout"]
        with wave.open(io.BytesIO(espeak(self.binary, options, text, ssml, self.timeout_s))) as wav:
            return Audio(wav.readframes(wav.getnframes()), wav.getframerate())


def espeak(binary: str, options: list[str], text: str, ssml: bool, timeout_s: float) -> bytes:
    """What ``espeak-ng`` writes for ``text``, given on stdin (never on the command line, so no text can become an
    option); ``SynthesisError`` if it fails, takes too long or writes nothing."""
    command = [binary, *options, "--stdin", *(["-m"] if ssml else [])]
    try:
        done = subprocess.run(command, input=text.encode(), capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise SynthesisError(f"espeak-ng took more than {timeout_s} s") from None
    if done.returncode != 0 or not done.stdout:
        raise SynthesisError(f"espeak-ng failed ({done.returncode}): {done.stderr.decode(errors='replace')[:200]}")
    return done.stdout


class PiperSynthesizer:
    """A Piper voice (a VITS model in ONNX, with its ``.onnx.json`` beside it) that the town provides: far more
    natural than espeak-ng, still on the CPU. Piper reads espeak-ng phonemes; they come from the same ``espeak-ng``
    binary (IPA, in the voice's own espeak language), one clause at a time. A pinned ``sha256`` is checked before
    the voice loads. The gateway's voice name is ignored: the file is the voice.
    """

    name = "piper"

    def __init__(self, model: Path, sha256: str = "", timeout_s: float = 30.0):
        config_file = model.with_name(model.name + ".json")
        binary = shutil.which("espeak-ng")
        if not model.is_file() or not config_file.is_file():
            raise ConfigError(
                f"GUICHET_SPEECH_PIPER_MODEL={model}: a Piper voice needs the .onnx file and its .onnx.json beside it."
            )
        if binary is None:
            raise ConfigError("A Piper voice reads espeak-ng phonemes: install espeak-ng (apt-get install espeak-ng).")
        if sha256:
            from bot.engines.model_store import sha256_file

            if (actual := sha256_file(model)) != sha256.lower():
                raise IntegrityError(f"{model} has sha256 {actual}, expected {sha256} (GUICHET_SPEECH_PIPER_SHA256).")
        import onnxruntime  # faster-whisper's dependency; only a Piper voice needs it here

        config: dict[str, Any] = json.loads(config_file.read_text())
        self.rate = int(config["audio"]["sample_rate"])
        self.ids: dict[str, list[int]] = config["phoneme_id_map"]
        self.scales = np.array(
            [config["inference"][key] for key in ("noise_scale", "length_scale", "noise_w")], dtype=np.float32
        )
        self.espeak_voice = config.get("espeak", {}).get("voice", "fr")
        self.binary, self.timeout_s = binary, timeout_s
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one caller's sentence must not take both cores from the model
        self.session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def phonemes(self, text: str, ssml: bool = False) -> list[str]:
        """espeak-ng's IPA for ``text``, one string per clause (espeak-ng writes each clause on its own line)."""
        written = espeak(self.binary, ["-q", "--ipa", "-v", self.espeak_voice], text, ssml, self.timeout_s)
        return [line.strip() for line in written.decode().splitlines() if line.strip()]

    def synthesize(self, text: str, voice: str | None = None, ssml: bool = False) -> Audio:
        clauses = self.phonemes(text, ssml)
        if not clauses:
            raise SynthesisError("no phonemes for this text")
        spoken = ", ".join(clauses) + "."  # espeak-ng drops punctuation; Piper pauses on it
        ids = list(self.ids["^"])
        for symbol in spoken:
            if symbol in self.ids:
                ids += self.ids[symbol] + self.ids["_"]
        ids += self.ids["$"]
        feed = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": self.scales,
        }
        if "sid" in self.inputs:
            feed["sid"] = np.array([0], dtype=np.int64)
        samples = np.asarray(self.session.run(None, feed)[0]).reshape(-1)
        pcm = (samples / max(float(np.abs(samples).max()), 1.0) * 32767).astype("<i2").tobytes()  # never clipped
        return Audio(pcm, self.rate)


def resampled(audio: Audio, rate: int) -> Audio:
    """``audio`` at ``rate`` Hz (polyphase filter, so no aliasing on the way down to a phone line).

    >>> resampled(Audio(b"\\x00\\x00" * 22050, 22050), 8000).seconds
    1.0
    """
    if audio.rate == rate:
        return audio
    from scipy.signal import resample_poly  # imported on first use: only the speech service needs scipy

    samples = np.frombuffer(audio.pcm, dtype="<i2").astype(np.float32)
    divisor = gcd(rate, audio.rate)
    out = resample_poly(samples, rate // divisor, audio.rate // divisor)
    return Audio(np.clip(np.round(out), -32768, 32767).astype("<i2").tobytes(), rate)


def encoded(audio: Audio, fmt: Format) -> bytes:
    """``audio`` packed as MP3, WAV or raw L16 (network byte order, as RFC 3551 defines L16)."""
    if fmt == "l16":
        return np.frombuffer(audio.pcm, dtype="<i2").astype(">i2").tobytes()
    if fmt == "wav":
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(audio.rate)
            wav.writeframes(audio.pcm)
        return buffer.getvalue()
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(MP3_KBPS)
    encoder.set_in_sample_rate(audio.rate)
    encoder.set_channels(1)
    encoder.set_quality(5)
    return bytes(encoder.encode(audio.pcm) + encoder.flush())


def for_the_phone(audio: Audio, fmt: Format, rate: int = PHONE_RATE) -> bytes:
    """What goes down the line: ``audio`` at the line's rate, in the format asked for."""
    return encoded(resampled(audio, rate), fmt)


class PhraseCache:
    """Speaks through a synthesizer, keeping the audio of the fixed phrases (welcome and AI disclosure, "un
    instant", hand-off…) so they cost nothing after the first call. Other texts are never kept."""

    MAX_ENTRIES = 256  # phrases x voices x formats; voices come from the gateway, so the table is bounded anyway

    def __init__(self, synthesizer: Synthesizer, phrases: list[str]):
        self.synthesizer, self.phrases = synthesizer, set(phrases)
        self._audio: dict[tuple[str, str | None, bool, Format], bytes] = {}
        self._lock = threading.Lock()

    def speak(self, text: str, voice: str | None, ssml: bool, fmt: Format) -> tuple[bytes, bool]:
        """(the encoded audio, whether it came from the cache)."""
        key = (text, voice, ssml, fmt)
        with self._lock:
            if key in self._audio:
                return self._audio[key], True
        data = for_the_phone(self.synthesizer.synthesize(text, voice, ssml), fmt)
        if text in self.phrases:
            with self._lock:
                if len(self._audio) < self.MAX_ENTRIES:
                    self._audio[key] = data
        return data, False
