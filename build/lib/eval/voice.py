"""Phone-channel measurements on an evaluation set: voice turn latency and how long the replies are to hear."""

from __future__ import annotations

import statistics
import time

from bot.phone.dialog import VoiceDialog
from eval.dataset import Case
from eval.scoring import percentile

WORDS_PER_SECOND = 2.5  # French synthesised speech, about 150 words a minute


def measure(dialog: VoiceDialog, cases: list[Case]) -> dict:
    """Each case as one caller turn (a fresh call each time): latency p50/p95, words and seconds spoken."""
    latencies, words, actions = [], [], {}
    for n, case in enumerate(cases):
        started = time.monotonic()
        reply = dialog.handle(f"bench-{n}", case.question, 0.9)
        latencies.append(time.monotonic() - started)
        words.append(len(reply.speech_text.split()))
        actions[reply.action] = actions.get(reply.action, 0) + 1
        dialog.end(f"bench-{n}")
    return {
        "turns": len(cases),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p95_s": round(percentile(latencies, 0.95), 3),
        "spoken_words_p50": statistics.median(words),
        "spoken_words_p95": percentile(words, 0.95),
        "spoken_seconds_p50": round(statistics.median(words) / WORDS_PER_SECOND, 1),
        "spoken_seconds_p95": round(percentile(words, 0.95) / WORDS_PER_SECOND, 1),
        "actions": actions,
    }
