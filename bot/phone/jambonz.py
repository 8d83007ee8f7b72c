"""jambonz's protocol: signed webhooks, the speech and digits of a payload, verb arrays.

The webhooks themselves are ``bot.web.routes.jambonz``: they go through the service's one door like every channel.

The caller's number (``from``) arrives in every payload; it is read by nobody here, stored nowhere, logged
never. Sessions are keyed on ``call_sid``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from bot.errors import ConfigError
from bot.phone.dialog import VoiceReply

GATHER_HOOK = "/voice/jambonz/gather"
SIGNATURE_TOLERANCE_S = 300
LANGUAGE = "fr-FR"
DIGITS = re.compile(r"[0-9*#]{1,16}")  # what a keypad can send
# Seconds of a slow answer after which the gateway says the wait text: about a second, so that a caller never hears
# much more silence than recognition takes (then again every as long, twice at most).
FILLER_AFTER_S = 1
# What a town may set for each speech side in ``voice.speech`` (names as in jambonz's verb specification).
SPEECH_KEYS = {
    "synthesizer": ("vendor", "label", "language", "voice"),
    "recognizer": ("vendor", "label", "language", "hints"),
}


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Jambonz-Signature`` header value for ``body``: ``t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(body: bytes, header: str | None, secrets: list[str], now: float | None = None) -> bool:
    """True if ``header`` signs ``body`` with one of ``secrets`` within the tolerance window."""
    if not header or not secrets:
        return False
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    timestamps = [v for k, v in parts if k.strip() == "t"]
    signatures = [v for k, v in parts if k.strip() == "v1"]
    if not timestamps or not signatures or not timestamps[0].isdigit():
        return False
    timestamp = int(timestamps[0])
    if abs((now or time.time()) - timestamp) > SIGNATURE_TOLERANCE_S:
        return False
    for secret in secrets:
        expected = sign(body, secret, timestamp).split("v1=", 1)[1]
        if any(hmac.compare_digest(expected, s.strip()) for s in signatures):
            return True
    return False


def heard(payload: dict) -> tuple[str, float | None, str]:
    """(transcript, confidence, digits) from a gather action-hook payload, in either shape jambonz sends; whatever
    does not have the expected type reads as nothing heard (a confidence outside 0–1 as unknown).

    >>> heard({"speech": {"alternatives": [{"transcript": "oui", "confidence": 0.9}]}, "digits": None})
    ('oui', 0.9, '')
    >>> heard({"speech": "oui", "digits": {"1": 2}})
    ('', None, '')
    """
    speech = payload.get("speech")
    speech = speech if isinstance(speech, dict) else {}
    transcripts = speech.get("transcripts")
    shapes = [speech, *(transcripts if isinstance(transcripts, list) else [])]  # flat, or one per transcript
    lists = [s.get("alternatives") for s in shapes if isinstance(s, dict)]
    alternatives = next((a for a in lists if isinstance(a, list) and a), [{}])
    best = alternatives[0] if isinstance(alternatives[0], dict) else {}
    transcript, confidence = best.get("transcript"), best.get("confidence")
    digits = payload.get("digits")
    known = isinstance(confidence, int | float) and not isinstance(confidence, bool) and 0 <= confidence <= 1
    return (
        transcript if isinstance(transcript, str) else "",
        float(confidence) if known else None,
        digits if isinstance(digits, str) and DIGITS.fullmatch(digits) else "",
    )


def opening_verbs(speech: object) -> list[dict]:
    """The verbs that open every call: a ``config`` naming the town's speech vendors (``voice.speech`` in
    ``config/town.yaml``), or none when the town leaves speech to the jambonz application's own settings.

    jambonz rejects a ``synthesizer`` or ``recognizer`` without a ``vendor``, so a side is sent whole or not at all.

    >>> opening_verbs(None)
    []
    >>> opening_verbs({"synthesizer": {"vendor": "google", "voice": "fr-FR-Standard-A"}})[0]["synthesizer"]
    {'vendor': 'google', 'voice': 'fr-FR-Standard-A', 'language': 'fr-FR'}
    """
    if speech is None:
        return []
    where = "config/town.yaml, voice.speech"
    if not isinstance(speech, dict) or not speech or set(speech) - set(SPEECH_KEYS):
        raise ConfigError(f"{where}: expected 'synthesizer' and/or 'recognizer', each with at least a 'vendor'.")
    config: dict = {"verb": "config"}
    for side, value in speech.items():
        allowed = SPEECH_KEYS[side]
        if not isinstance(value, dict) or not isinstance(value.get("vendor"), str) or not value["vendor"].strip():
            raise ConfigError(f"{where}.{side}: 'vendor' is required (a jambonz vendor name, e.g. 'google').")
        if unknown := sorted(set(value) - set(allowed)):
            raise ConfigError(f"{where}.{side}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}.")
        if "hints" in value and not (
            isinstance(value["hints"], list) and all(isinstance(h, str) for h in value["hints"])
        ):
            raise ConfigError(f"{where}.{side}.hints: expected a list of words or phrases.")
        config[side] = {k: (v if k == "hints" else str(v)) for k, v in value.items()} | {
            "language": str(value.get("language") or LANGUAGE)
        }
    return [config]


def gather(text: str, wait_text: str | None) -> dict:
    """Say ``text`` and listen for speech or keypad digits; play ``wait_text`` if the answer is slow (nothing when
    None: the service could not say it yet)."""
    verb = {
        "verb": "gather",
        "input": ["speech", "digits"],
        "actionHook": GATHER_HOOK,
        "bargein": True,
        "dtmfBargein": True,
        "numDigits": 1,
        "timeout": 8,
        "say": {"text": text},
    }
    if wait_text:
        verb["actionHookDelayAction"] = {
            "enabled": True,
            "noResponseTimeout": FILLER_AFTER_S,
            "retries": 2,
            "actions": [{"verb": "say", "text": wait_text}],
        }
    return verb


def verbs_for(reply: VoiceReply, wait_text: str | None) -> list[dict]:
    """The jambonz verb array for a dialog decision."""
    if reply.action == "handoff" and reply.handoff_target:
        return [
            {"verb": "say", "text": reply.speech_text},
            {"verb": "dial", "answerOnBridge": True, "target": [{"type": "phone", "number": reply.handoff_target}]},
        ]
    if reply.action == "end":
        return [{"verb": "say", "text": reply.speech_text}, {"verb": "hangup"}]
    return [gather(reply.speech_text, wait_text)]
