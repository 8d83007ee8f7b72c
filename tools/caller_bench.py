"""Scripted callers on the phone line, measured: does a caller reach their answer, in how many exchanges, how fast.

Starts ``guichet serve`` on the demo index with the speech service on. Each spoken town question
(``eval/datasets/speech/town-questions.jsonl``) is one caller, on the clean and on the noisy 8 kHz line: the
question is synthesized by the server's ``/speech/tts`` (espeak-ng), streamed to ``/speech/stt`` at real-time pace
as jambonz does, and the transcript with its confidence posted to the jambonz gather webhook, signed. The caller
then acts on what the bot says, as a person who knows what they asked would:

- "Vous appelez au sujet de : X ?": 1 (yes) when X shares a word with their question or with the title of the
  document their answer comes from, else 2 (no);
- "Pouvez-vous répéter": says the question again (the same words, the line's noise drawn again);
- the keypad menu: the topic sharing the most words with their question (0, a person, when none does or it was
  gone through already); then the choice sharing the most words with it, else 9 for more choices, else 0;
- a refusal (the service busy or starting): the same thing again;
- an answer, a "no source", a transfer or a goodbye ends the call.

What "right" is: the reference is the answer the same question gets typed exactly (another call, confidence
0.95). A call succeeds when it ends on an answer citing the reference's document, or, when the reference is not an
answer, on a person (a transfer, or outside opening hours when to call back) or on the same "no source". How many
calls end with a person is reported beside it. It measures the dialog and the recognizer, not the answer path
(the answer evaluations do that). Reported per line: success, exchanges (median, max), recognition time (end of
speech → final transcript), and from the end of speech (or the key press): the reply, its audio's first byte, and
the first audio the caller hears when the gateway's filler ("Un instant, je cherche", ``actionHookDelayAction``
``jambonz.FILLER_AFTER_S`` after the webhook is called) comes before the reply. The callers run ``--at-once`` at a
time (10: the issue's load), each call its own ``call_sid``; refusals by the capacity gate are counted.

    python -m tools.caller_bench                        # 42 callers x 2 lines, 10 at once (~30 min)
    python -m tools.caller_bench --limit 6 --at-once 2  # a quick look
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from bot.language.words import stems
from bot.phone import jambonz
from tools.loadcheck import ROOT, percentile, served, write_report
from tools.speech_bench import KEY, QUESTIONS, SECRET, spoken, telephone_noise, transcribe_call

FILLER = "Un instant, je cherche."  # voice_wait in prompts/messages.fr.yaml
MAX_EXCHANGES = 8
CONFIRM = re.compile(r"au sujet de : (.+?) \?")
MENU_OPTION = re.compile(r"Pour ([^.]+?), tapez ([1-8])\.")
SOURCE = re.compile(r"Source : (.+?), sur ")
REFUSED = ("très sollicité", "démarre", "beaucoup de questions")


@dataclass
class Call:
    """One scripted caller's call: what happened at each exchange."""

    question: dict
    line: str
    reference: dict
    exchanges: list[dict] = field(default_factory=list)
    ended: str = ""  # answered, no_source, handoff, goodbye, gave_up
    title: str = ""  # the cited document's title, when answered
    refused: int = 0

    @property
    def success(self) -> bool:
        if self.reference["ended"] == "answered":
            return self.ended == "answered" and self.title == self.reference["title"]
        return self.ended in ("handoff", "goodbye", self.reference["ended"])


def post(base: str, path: str, payload: dict) -> list[dict]:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Jambonz-Signature": jambonz.sign(body, SECRET)}
    response = httpx.post(f"{base}{path}", content=body, headers=headers, timeout=600)
    response.raise_for_status()
    return response.json()


def first_audio(base: str, text: str) -> None:
    """Wait for the first byte of ``text``'s audio from the server's synthesizer."""
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "audio/mpeg"}
    payload = {"language": "fr-FR", "type": "text", "text": text or "Un instant."}
    with httpx.stream("POST", f"{base}/speech/tts", json=payload, headers=headers, timeout=120) as response:
        next(response.iter_bytes())


def said(verbs: list[dict]) -> tuple[str, str]:
    """(what the bot says, how the exchange ends: listen, handoff or goodbye)."""
    kinds = [v.get("verb") for v in verbs]
    text = next((v["say"]["text"] if v.get("verb") == "gather" else v.get("text", "") for v in verbs), "")
    return text, "handoff" if "dial" in kinds else "goodbye" if "hangup" in kinds else "listen"


def ending(text: str, how: str) -> tuple[str, str]:
    """(how the call ended, the cited title) from the last thing said, or ("", "") while the dialog goes on."""
    if how != "listen":
        return how, ""
    if "Avez-vous une autre question" in text or "plus de détails" in text:
        source = SOURCE.search(text)
        return ("answered", source.group(1)) if source else ("no_source", "")
    return "", ""


ASKING = set(stems("comment quel quelle quels quelles combien où quand bonjour faut faire est-ce qu'il"))


def shared(a: str, b: str) -> int:
    """Words two texts share, as a caller hears them (the words that ask a question left out)."""
    return len({w for w in stems(a) if len(w) > 2} & set(stems(b)) - ASKING)


def reference(base: str, question: dict) -> dict:
    """What the question gets when heard exactly."""
    call = {"call_sid": f"ref-{question['id']}", "from": "anonymous", "to": "+33199001234", "direction": "inbound"}
    speech = {"is_final": True, "alternatives": [{"transcript": question["text"], "confidence": 0.95}]}
    text, how = said(post(base, "/voice/jambonz/gather", call | {"reason": "speechDetected", "speech": speech}))
    ended, title = ending(text, how)
    post(base, "/voice/jambonz/status", call | {"call_status": "completed"})
    return {"ended": ended or "unclear", "title": title}


def run_call(base: str, ws_url: str, call: Call, audio: np.ndarray, snr: float | None, seed: int) -> Call:
    """The scripted caller's whole call."""
    ids = {"call_sid": f"bench-{call.line}-{call.question['id']}", "from": "anonymous", "to": "+33199001234"}
    post(base, "/voice/jambonz/call", ids | {"direction": "inbound", "call_status": "ringing"})
    mine = call.question["text"]
    action: dict = {"speak": True}
    state: dict = {"level": "", "tried": set()}
    for n in range(MAX_EXCHANGES):
        if action.get("speak"):
            samples = audio if snr is None else telephone_noise(audio, snr, seed * 100 + n)
            heard = transcribe_call(ws_url, samples)
            stt_s = heard["after_speech_s"] or 0.0
            began = time.monotonic() - stt_s
            alternative = {"transcript": heard["transcript"], "confidence": heard["confidence"]}
            payload = {"reason": "speechDetected", "speech": {"is_final": True, "alternatives": [alternative]}}
            did = f"spoke: {heard['transcript']!r} ({heard['confidence']:.2f})"
        else:
            began, stt_s = time.monotonic(), 0.0
            payload = {"reason": "dtmfDetected", "digits": action["digit"]}
            did = f"pressed {action['digit']}"
        text, how = said(post(base, "/voice/jambonz/gather", ids | payload))
        replied = time.monotonic() - began
        first_audio(base, text)
        audio_s = time.monotonic() - began
        call.exchanges.append(
            {"did": did, "heard": text[:160], "stt_s": stt_s, "reply_s": replied, "first_audio_s": audio_s}
        )
        call.ended, call.title = ending(text, how)
        if call.ended:
            break
        action = next_action(text, mine, call, state)
    else:
        call.ended = "gave_up"
    post(base, "/voice/jambonz/status", ids | {"call_status": "completed"})
    return call


def next_action(text: str, mine: str, call: Call, state: dict) -> dict:
    """What a caller who knows their question does after ``text``."""
    if any(r in text for r in REFUSED):
        call.refused += 1
        return {"speak": True}
    if topic := CONFIRM.search(text):
        known = f"{mine} {call.reference['title']}"
        return {"digit": "1" if shared(topic.group(1), known) else "2"}
    if options := MENU_OPTION.findall(text):
        best = max(options, key=lambda o: shared(o[0], mine))
        if state.get("level") == "choices":
            if shared(best[0], mine):
                return {"digit": best[1]}
            more = "d'autres choix" in text
            state["level"] = "choices" if more else "topics"
            return {"digit": "9" if more else "0"}  # the next choices, or (none of them theirs) a person
        if shared(best[0], mine) == 0 or best[0] in state["tried"]:
            return {"digit": "0"}  # no topic is theirs, or theirs was gone through: a person
        state["tried"].add(best[0])
        state["level"] = "choices"
        return {"digit": best[1]}
    state["level"] = ""
    return {"speak": True}  # asked to repeat, or anything else: the question again


def summary(calls: list[Call], filler_s: float) -> dict:
    counts = [len(c.exchanges) for c in calls]
    replies = [e["reply_s"] for c in calls for e in c.exchanges]
    exchanges = [e for c in calls for e in c.exchanges]
    audio = [e["first_audio_s"] for e in exchanges]
    # jambonz says the filler once the webhook is FILLER_AFTER_S late (after recognition): its audio is cached
    heard = [min(e["first_audio_s"], e["stt_s"] + jambonz.FILLER_AFTER_S + filler_s) for e in exchanges]
    stt = [e["stt_s"] for e in exchanges if e["stt_s"]]
    return {
        "calls": len(calls),
        "success": round(sum(c.success for c in calls) / len(calls), 3) if calls else 0.0,
        "ended": {k: sum(c.ended == k for c in calls) for k in sorted({c.ended for c in calls})},
        "exchanges_median": statistics.median(counts) if counts else None,
        "exchanges_max": max(counts, default=None),
        "over_6_exchanges": sum(n > 6 for n in counts),
        "reply_p50_s": percentile(replies, 0.5),
        "reply_p95_s": percentile(replies, 0.95),
        "answer_audio_p50_s": percentile(audio, 0.5),
        "answer_audio_p95_s": percentile(audio, 0.95),
        "recognition_p50_s": percentile(stt, 0.5),
        "recognition_p95_s": percentile(stt, 0.95),
        "first_audio_with_filler_p50_s": percentile(heard, 0.5),
        "first_audio_with_filler_p95_s": percentile(heard, 0.95),
        "with_a_person": sum(c.ended in ("handoff", "goodbye") for c in calls),
        "refused": sum(c.refused for c in calls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "var" / "index" / "demo")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--snr", type=float, default=10.0, help="signal-to-noise ratio of the noisy line (dB)")
    parser.add_argument("--at-once", type=int, default=10, help="callers on the line at the same time")
    parser.add_argument("--capacity", type=int, default=4, help="the server's GUICHET_MAX_TURNS_IN_PROGRESS")
    parser.add_argument("--port", type=int, default=8772)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "callers")
    args = parser.parse_args()
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    questions = questions[: args.limit or None]
    env = {"GUICHET_SPEECH_API_KEY": KEY, "GUICHET_VOICE_WEBHOOK_SECRET": SECRET}
    base, ws_url = f"http://127.0.0.1:{args.port}", f"ws://127.0.0.1:{args.port}/speech/stt"
    lines = {"clean": None, f"noisy {args.snr:g} dB": args.snr}
    started = time.monotonic()
    with served(args.index, args.port, capacity=args.capacity, extra_env=env):
        references = {q["id"]: reference(base, q) for q in questions}
        first_audio(base, FILLER)  # said once: cached, as on a live line
        began = time.monotonic()
        first_audio(base, FILLER)
        filler_s = time.monotonic() - began
        audio = {q["id"]: spoken(base, q["text"]) for q in questions}
        jobs = [
            (Call(q, line, references[q["id"]]), snr, seed)
            for line, snr in lines.items()
            for seed, q in enumerate(questions)
        ]
        printing = threading.Lock()

        def one(job: tuple[Call, float | None, int]) -> Call:
            call, snr, seed = job
            run_call(base, ws_url, call, audio[call.question["id"]], snr, seed)
            with printing:
                mark = "ok" if call.success else "--"
                print(f"{mark} {call.line} {call.question['id']}: {call.ended} in {len(call.exchanges)}", flush=True)
            return call

        with ThreadPoolExecutor(args.at_once) as pool:
            calls = list(pool.map(one, jobs))
    by_line = {line: summary([c for c in calls if c.line == line], filler_s) for line in lines}
    report = {
        "questions": len(questions),
        "at_once": args.at_once,
        "capacity": args.capacity,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "references": {k: sum(r["ended"] == k for r in references.values()) for k in ("answered", "no_source")},
        "lines": by_line,
        "calls": [
            {"id": c.question["id"], "line": c.line, "success": c.success, "ended": c.ended, "title": c.title}
            | {"reference": c.reference, "exchanges": c.exchanges}
            for c in calls
        ],
    }
    text = [
        f"Scripted callers: {len(questions)} spoken town questions x {len(lines)} lines, {args.at_once} at once "
        f"(capacity {args.capacity}), {report['minutes']} min.",
        "",
        "| line | success | with a person | exchanges median / max (over 6) | recognition p50 / p95 (s) "
        "| end of speech → reply p50 / p95 (s) | → its audio p50 / p95 (s) | → first audio, filler counted, p50 / p95 "
        "(s) | refused |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {line} | {s['success']:.1%} | {s['with_a_person']} "
            f"| {s['exchanges_median']} / {s['exchanges_max']} ({s['over_6_exchanges']}) "
            f"| {s['recognition_p50_s']} / {s['recognition_p95_s']} | {s['reply_p50_s']} / {s['reply_p95_s']} "
            f"| {s['answer_audio_p50_s']} / {s['answer_audio_p95_s']} "
            f"| {s['first_audio_with_filler_p50_s']} / {s['first_audio_with_filler_p95_s']} | {s['refused']} |"
            for line, s in by_line.items()
        ),
        "",
        "Ends: " + "; ".join(f"{line}: {s['ended']}" for line, s in by_line.items()) + ".",
    ]
    write_report(args.out, "callers", report, "\n".join(text) + "\n")


if __name__ == "__main__":
    main()
