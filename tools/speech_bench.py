"""The phone's speech on this server, measured: recognition accuracy and speed, synthesis, and the whole turn.

Starts ``guichet serve`` on the demo index with the speech service on. Each spoken town question
(``eval/datasets/speech/town-questions.jsonl``) is synthesized by the server's own ``/speech/tts`` (espeak-ng, 8 kHz
L16), optionally with telephone-band noise, and streamed to ``/speech/stt`` in 20 ms frames at real-time pace, as
jambonz does, followed by silence. Reported per condition: word error rate, recognition real-time factor
(recognition time / speech duration), end of speech → final transcript p50/p95. With ``--turns``, each clean
transcript then goes through the phone webhook (the answer) and ``/speech/tts`` (its audio): end of speech → first
audio byte p50/p95. Memory: the server's resident set after loading, and after the run.

    python -m tools.speech_bench --index var/index/demo            # WER clean/noisy, latencies, whole turns
    python -m tools.speech_bench --limit 10 --no-turns             # a quick look
    python -m tools.speech_bench --control-voice en_US-joe-medium.onnx   # and a natural voice through the same path
    python -m tools.speech_bench --callers 20                      # and 20 callers speaking at the same moment
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import psutil
from websockets.sync.client import connect

from bot.phone import jambonz
from tools.loadcheck import ROOT, percentile, served, write_report

QUESTIONS = ROOT / "eval" / "datasets" / "speech" / "town-questions.jsonl"
KEY, SECRET = "bench-speech-key", "bench-voice-secret"
RATE, FRAME_MS = 8000, 20


def spoken(base: str, text: str) -> np.ndarray:
    """``text`` said by the server's synthesizer: 8 kHz int16 samples."""
    response = httpx.post(
        f"{base}/speech/tts",
        json={"language": "fr-FR", "type": "text", "text": text},
        headers={"Authorization": f"Bearer {KEY}", "Accept": "audio/wav"},
        timeout=60,
    )
    response.raise_for_status()
    with wave.open(io.BytesIO(response.content)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def telephone_noise(samples: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """Band-limited (300–3400 Hz) noise added at ``snr_db`` to the speech, as a poor line would."""
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(seed)
    noise = sosfilt(butter(4, [300, 3400], btype="band", fs=RATE, output="sos"), rng.standard_normal(len(samples)))
    speech = samples.astype(np.float64)
    power = np.mean(speech**2) / (10 ** (snr_db / 10))
    noisy = speech + noise * np.sqrt(power / np.mean(noise**2))
    return np.clip(np.round(noisy), -32768, 32767).astype("<i2")


def transcribe_call(
    ws_url: str, samples: np.ndarray, silence_s: float = 1.5, pace: bool = True, interim: bool = False
) -> dict:
    """Stream ``samples`` like jambonz (start, 20 ms frames at real-time pace, silence, stop): the final transcript,
    how long after the end of speech it came, and the interim transcripts before it (if asked for)."""
    pcm = samples.astype("<i2").tobytes() + bytes(2 * int(RATE * silence_s))
    step = 2 * RATE * FRAME_MS // 1000
    start = {"type": "start", "language": "fr-FR", "format": "raw", "encoding": "LINEAR16", "sampleRateHz": RATE}
    start["interimResults"] = interim
    interims = []
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {KEY}"}, open_timeout=30) as ws:
        ws.send(json.dumps(start))
        began = time.monotonic()
        speech_ends = began + len(samples) / RATE
        for n, i in enumerate(range(0, len(pcm), step)):
            if pace:
                time.sleep(max(0.0, began + n * FRAME_MS / 1000 - time.monotonic()))
            ws.send(pcm[i : i + step])
        ws.send(json.dumps({"type": "stop"}))
        finals = []
        for raw in ws:
            message = json.loads(raw)
            if message["type"] == "error":
                raise RuntimeError(message["error"])
            if message["is_final"]:
                finals.append((time.monotonic(), message["alternatives"][0]))
            elif not finals:
                interims.append(message["alternatives"][0]["transcript"])
    if not finals:
        return {"transcript": "", "confidence": 0.0, "after_speech_s": None, "interims": interims}
    at, alternative = finals[0]
    text = " ".join(a["transcript"] for _, a in finals)
    heard = {"transcript": text, "confidence": alternative["confidence"], "after_speech_s": at - speech_ends}
    return heard | {"interims": interims}


def words(text: str) -> list[str]:
    """
    >>> words("Quels sont les horaires d'ouverture ?")
    ['quels', 'sont', 'les', 'horaires', "d'", 'ouverture']
    """
    return re.findall(r"\w+'?", text.lower().replace("’", "'"))


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference words): the Levenshtein distance over words.

    >>> word_errors("le marché du samedi", "le marcher du samedi matin")
    (2, 4)
    """
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1], len(ref)


def phone_turn(base: str, transcript: str, confidence: float, n: int) -> float:
    """The webhook's answer to ``transcript`` and its audio: seconds until the audio's first byte."""
    began = time.monotonic()
    call = {"call_sid": f"bench-{n}", "from": "anonymous", "to": "+33199001234", "direction": "inbound"}
    speech = {"is_final": True, "alternatives": [{"transcript": transcript, "confidence": confidence}]}
    body = json.dumps(call | {"reason": "speechDetected", "speech": speech}).encode()
    headers = {"Content-Type": "application/json", "Jambonz-Signature": jambonz.sign(body, SECRET)}
    verbs = httpx.post(f"{base}/voice/jambonz/gather", content=body, headers=headers, timeout=300).json()
    said = next((v.get("say", v).get("text") for v in verbs if v.get("say") or v.get("verb") == "say"), "")
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "audio/mpeg"}
    payload = {"language": "fr-FR", "type": "text", "text": said or "Un instant."}
    with httpx.stream("POST", f"{base}/speech/tts", json=payload, headers=headers, timeout=60) as response:
        next(response.iter_bytes())
    return time.monotonic() - began


def callers_at_once(ws_url: str, audio: list[np.ndarray], callers: int) -> dict:
    """``callers`` calls streaming at real-time pace at the same moment (question i for caller i): how long after
    the end of their speech each one got its transcript, while Whisper takes one utterance at a time."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> float | str:
        try:
            after = transcribe_call(ws_url, audio[i % len(audio)])["after_speech_s"]
            return after if after is not None else "no transcript"
        except Exception as exc:  # noqa: BLE001 - a refused or broken call is counted, not fatal
            return type(exc).__name__

    with ThreadPoolExecutor(callers) as pool:
        outcomes = list(pool.map(one, range(callers)))
    latencies = [o for o in outcomes if isinstance(o, float)]
    return {
        "callers": callers,
        "transcribed": len(latencies),
        "failed": [o for o in outcomes if not isinstance(o, float)],
        "after_speech_p50_s": percentile(latencies, 0.5),
        "after_speech_p95_s": percentile(latencies, 0.95),
        "after_speech_max_s": round(max(latencies), 3) if latencies else None,
    }


def espeak_peak_mb() -> float:
    """espeak-ng's peak memory speaking one answer, measured from a fresh process whose only child it is."""
    probe = (
        "import resource; from bot.engines.speech import EspeakSynthesizer; "
        "EspeakSynthesizer().synthesize('Bonjour, la mairie est ouverte du lundi au vendredi de 8 h 30 à 12 h.'); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 1e3


def engine_costs(clean_audio: list[np.ndarray]) -> dict:
    """Whisper on its own, with the server stopped: real-time factor of each clean question, load time, memory."""
    from bot.engines.recognition import Upsampler, WhisperRecognizer, resolve_recognizer_path
    from bot.settings import Settings

    settings, me = Settings(), psutil.Process()
    espeak_mb = espeak_peak_mb()
    before, began = me.memory_info().rss, time.monotonic()
    recognizer = WhisperRecognizer(resolve_recognizer_path(settings), settings.stt_threads, settings.stt_beam_size)
    loaded = time.monotonic() - began
    factors = []
    for samples in clean_audio:
        audio = Upsampler(RATE)(samples.astype(np.float32) / 32768)
        began = time.monotonic()
        recognizer.transcribe(audio)
        factors.append((time.monotonic() - began) / (len(samples) / RATE))
    return {
        "recognition_rtf_p50": percentile(factors, 0.5),
        "recognition_rtf_p95": percentile(factors, 0.95),
        "recognizer_load_s": round(loaded, 2),
        "recognizer_rss_mb": round((me.memory_info().rss - before) / 1e6),
        "espeak_peak_rss_mb": round(espeak_mb),
    }


CONTROL = [  # the control: English, because the only natural (Piper) voice on PyPI is English
    "Hello, I would like to renew my passport.",
    "What are the opening hours of the town hall on Saturday?",
    "How much does the school canteen cost for one child?",
    "I need to register the birth of my daughter.",
    "Where can I leave my old furniture for collection?",
    "Is the recycling centre open on Sunday morning?",
    "I would like to rent the village hall on the fourteenth of March.",
    "How long does it take to get an identity card?",
    "Can I park for free on Republic Square?",
    "How much is a thirty year plot at the cemetery?",
]


def natural_voice_control(voice: Path) -> dict:
    """The same path as ``/speech/stt`` (8 kHz, 20 ms frames, the session's upsampler, Silero's end of speech,
    Whisper) fed a natural Piper voice instead of espeak-ng: how much of the error is the synthetic voice."""
    from faster_whisper import WhisperModel

    from bot.engines.recognition import EndOfSpeech, Upsampler, as_float, resolve_recognizer_path
    from bot.engines.speech import PiperSynthesizer, resampled
    from bot.settings import Settings

    me, before = psutil.Process(), psutil.Process().memory_info().rss
    piper, settings = PiperSynthesizer(voice), Settings()
    piper_mb = (me.memory_info().rss - before) / 1e6
    whisper = WhisperModel(str(resolve_recognizer_path(settings)), device="cpu", compute_type="int8")
    edits = total = 0
    factors = []
    for sentence in CONTROL:
        began = time.monotonic()
        audio = piper.synthesize(sentence)
        factors.append((time.monotonic() - began) / audio.seconds)
        pcm = resampled(audio, RATE).pcm + bytes(2 * RATE)
        upsampler, detector = Upsampler(RATE), EndOfSpeech()
        step = 2 * RATE * FRAME_MS // 1000
        for i in range(0, len(pcm), step):
            detector.feed(upsampler(as_float(pcm[i : i + step])))
            if detector.ended:
                break
        segments, _ = whisper.transcribe(
            detector.samples, language="en", beam_size=settings.stt_beam_size, temperature=0.0
        )
        heard = " ".join(segment.text for segment in segments)
        n, m = word_errors(sentence, heard)
        edits, total = edits + n, total + m
        print(f"control: {heard!r} ({n}/{m})", flush=True)
    return {
        "control_voice": voice.name,
        "control_wer": round(edits / total, 3),
        "control_sentences": len(CONTROL),
        "piper_rtf_p50": percentile(factors, 0.5),
        "piper_rss_mb": round(piper_mb),
    }


def condition(name: str, rows: list[dict]) -> dict:
    edits = sum(r["edits"] for r in rows)
    total = sum(r["reference_words"] for r in rows)
    latencies = [r["after_speech_s"] for r in rows if r["after_speech_s"] is not None]
    return {
        "condition": name,
        "questions": len(rows),
        "wer": round(edits / total, 3),
        "exact": sum(r["edits"] == 0 for r in rows),
        "after_speech_p50_s": percentile(latencies, 0.5),
        "after_speech_p95_s": percentile(latencies, 0.95),
        "speech_seconds": round(sum(r["speech_s"] for r in rows), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "var" / "index" / "demo")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--snr", type=float, default=10.0, help="signal-to-noise ratio of the noisy line (dB)")
    parser.add_argument("--turns", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--port", type=int, default=8771)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "speech")
    parser.add_argument("--callers", type=int, default=0, help="also this many callers speaking at once")
    parser.add_argument("--control-voice", type=Path, help="a Piper voice (.onnx) for the natural-voice control")
    args = parser.parse_args()
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    questions = questions[: args.limit or None]
    env = {"GUICHET_SPEECH_API_KEY": KEY, "GUICHET_VOICE_WEBHOOK_SECRET": SECRET}
    env["GUICHET_RATE_LIMIT_EXEMPT"] = "127.0.0.1"  # one caller asking question after question
    base, ws_url = f"http://127.0.0.1:{args.port}", f"ws://127.0.0.1:{args.port}/speech/stt"
    with served(args.index, args.port, capacity=4, extra_env=env) as process:
        server = psutil.Process(process.pid)
        rss_loaded = server.memory_info().rss / 1e6
        rows: dict[str, list[dict]] = {"clean": [], f"noisy {args.snr:g} dB": []}
        synthesis: list[float] = []
        turns: list[float] = []
        right_turns: list[float] = []
        clean_audio: list[np.ndarray] = []
        for n, question in enumerate(questions):
            began = time.monotonic()
            clean = spoken(base, question["text"])
            synthesis.append(time.monotonic() - began)
            clean_audio.append(clean)
            for name, samples in zip(rows, (clean, telephone_noise(clean, args.snr, n)), strict=True):
                heard = transcribe_call(ws_url, samples)
                edits, total = word_errors(question["text"], heard["transcript"])
                rows[name].append(
                    {"id": question["id"], "kinds": question["kinds"], "reference": question["text"], **heard}
                    | {"edits": edits, "reference_words": total, "speech_s": len(samples) / RATE}
                )
                print(f"{question['id']} {name}: {heard['transcript']!r} ({edits}/{total})", flush=True)
                if name == "clean" and args.turns and heard["after_speech_s"] is not None:
                    answered = phone_turn(base, heard["transcript"], heard["confidence"], n)
                    turns.append(heard["after_speech_s"] + answered)
                    # the same turn had recognition been right: the answer path's real cost
                    answered = phone_turn(base, question["text"], 0.95, n)
                    right_turns.append(heard["after_speech_s"] + answered)
        crowd = callers_at_once(ws_url, clean_audio, args.callers) if args.callers else None
        rss_end = server.memory_info().rss / 1e6
    engine = engine_costs(clean_audio)
    if args.control_voice:
        engine |= natural_voice_control(args.control_voice)
    conditions = [condition(name, r) for name, r in rows.items()]
    by_kind = {
        kind: condition(kind, [r for r in rows["clean"] if kind in r["kinds"]])["wer"]
        for kind in sorted({k for q in questions for k in q["kinds"]})
    }
    report = {
        "conditions": conditions,
        "clean_wer_by_kind": by_kind,
        "synthesis_p50_s": percentile(synthesis, 0.5),
        "synthesis_p95_s": percentile(synthesis, 0.95),
        "turn_end_of_speech_to_first_audio_byte_p50_s": percentile(turns, 0.5),
        "turn_end_of_speech_to_first_audio_byte_p95_s": percentile(turns, 0.95),
        "turn_if_heard_right_p50_s": percentile(right_turns, 0.5),
        "turn_if_heard_right_p95_s": percentile(right_turns, 0.95),
        **engine,
        "callers_at_once": crowd,
        "server_rss_loaded_mb": round(rss_loaded),
        "server_rss_end_mb": round(rss_end),
        "rows": rows,
    }
    lines = [
        f"Speech on this server: {len(questions)} spoken town questions (espeak-ng, 8 kHz), Whisper via /speech/stt.",
        "",
        "| line | WER | exact | end of speech → final transcript p50 / p95 (s) |",
        "|---|---|---|---|",
        *(
            f"| {c['condition']} | {c['wer']:.1%} | {c['exact']}/{c['questions']} "
            f"| {c['after_speech_p50_s']} / {c['after_speech_p95_s']} |"
            for c in conditions
        ),
        "",
        f"Clean WER by kind of question: {', '.join(f'{k} {v:.1%}' for k, v in by_kind.items())}.",
        f"Synthesis of a question (espeak-ng, WAV) p50 / p95: {report['synthesis_p50_s']} / "
        f"{report['synthesis_p95_s']} s.",
        f"Whole phone turn, end of speech → first audio byte of the answer, p50 / p95: "
        f"{report['turn_end_of_speech_to_first_audio_byte_p50_s']} / "
        f"{report['turn_end_of_speech_to_first_audio_byte_p95_s']} s with Whisper's transcript (a misheard question "
        f"is asked again at once); {report['turn_if_heard_right_p50_s']} / {report['turn_if_heard_right_p95_s']} s "
        "had the question been heard right (the answer path's real cost).",
        f"Recognition alone (in this process, nothing beside it): real-time factor p50 / p95 "
        f"{engine['recognition_rtf_p50']} / {engine['recognition_rtf_p95']}, Whisper loaded in "
        f"{engine['recognizer_load_s']} s, +{engine['recognizer_rss_mb']} MB resident; espeak-ng peaks at "
        f"{engine['espeak_peak_rss_mb']} MB (a child process per text).",
        f"Server resident memory (LLM, embedder, index, Whisper): {report['server_rss_loaded_mb']} MB loaded, "
        f"{report['server_rss_end_mb']} MB after.",
        *(
            [
                f"{crowd['callers']} callers at once: {crowd['transcribed']} transcribed, end of speech → final "
                f"transcript p50 / p95 / max {crowd['after_speech_p50_s']} / {crowd['after_speech_p95_s']} / "
                f"{crowd['after_speech_max_s']} s; failed: {crowd['failed'] or 'none'}."
            ]
            if crowd
            else []
        ),
        *(
            [
                f"Control, a natural voice ({engine['control_voice']}, English) through the same 8 kHz stream, "
                f"end of speech and Whisper: WER {engine['control_wer']:.1%} on {engine['control_sentences']} "
                f"sentences. Piper: +{engine['piper_rss_mb']} MB resident, synthesis real-time factor p50 "
                f"{engine['piper_rtf_p50']}."
            ]
            if args.control_voice
            else []
        ),
    ]
    write_report(args.out, "speech", report, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
