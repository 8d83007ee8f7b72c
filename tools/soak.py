"""Soak run: the service at its capacity limit for a long time, with web, phone and staff traffic mixed.

Starts ``guichet serve`` on the index, then keeps ``--capacity`` clients busy for ``--minutes``: residents on the
web (JSON and streamed turns, a vote now and then), callers on the phone channel (the generic ``/api/v1/voice/turn``
and, every other call, jambonz's signed webhooks: a call opened, questions, a keypad press, the call ended), a
gateway streaming audio to ``/speech/stt`` (speech-like noise, silence, a frame of odd length now and then, a socket
dropped mid-sentence), staff (question-set turns on the eval channel, ``/metrics`` and ``/readyz``). Every 5 s it
samples the server's resident memory and open file descriptors. What it reports, not asserts: memory at the end
against memory after warm-up, descriptor growth, and the count of each status (5xx other than 503 are errors).
Figures go to ``var/soak/soak.json`` and ``.md``.

    python -m tools.soak --index var/index/demo --minutes 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

from bot.phone import jambonz
from tools.loadcheck import ROOT, percentile, served, write_report

SECRET = "soak-voice-secret"


async def web_resident(client: httpx.AsyncClient, n: int, questions: list[str], until: float, seen: list) -> None:
    rng, headers = random.Random(n), {"X-Forwarded-For": f"10.1.0.{n + 1}"}
    while time.monotonic() < until:
        body, streamed, response = {"text": rng.choice(questions)}, rng.random() < 0.5, None
        started = time.monotonic()
        try:
            if streamed:
                response = await client.post("/api/v1/turn/stream", json=body, headers=headers)
                final = [line for line in response.text.splitlines() if line.startswith("data:")][-1:]
                reply = json.loads(final[0][5:]) if final and response.status_code == 200 else {}
            else:
                response = await client.post("/api/v1/turn", json=body, headers=headers)
                reply = response.json() if response.status_code == 200 else {}
            seen.append(("web", response.status_code, time.monotonic() - started))
            if reply.get("turn_id") and rng.random() < 0.3:
                vote = {"session_id": reply["session_id"], "turn_id": reply["turn_id"], "useful": rng.random() < 0.7}
                voted = await client.post("/api/v1/feedback", json=vote, headers=headers)
                seen.append(("feedback", voted.status_code, 0.0))
        except (httpx.HTTPError, ValueError, IndexError) as exc:
            seen.append(("web", type(exc).__name__, time.monotonic() - started))
        await _polite_wait(response)


async def jambonz_call(client: httpx.AsyncClient, rng: random.Random, sid: str, questions: list[str], seen: list):
    """One call through jambonz's webhooks, signed as the gateway signs them."""
    call = {"call_sid": sid, "from": "anonymous", "to": "+33199001234", "direction": "inbound"}
    steps = [("/voice/jambonz/call", {"call_status": "ringing"})]
    for _ in range(rng.randint(1, 3)):
        alternative = {"transcript": rng.choice(questions), "confidence": rng.choice([0.9, 0.3])}
        steps.append(("/voice/jambonz/gather", {"reason": "speechDetected", "speech": {"alternatives": [alternative]}}))
    steps += [("/voice/jambonz/gather", {"reason": "dtmfDetected", "digits": rng.choice("0129")})]
    steps += [("/voice/jambonz/status", {"call_status": "completed"})]
    for path, fields in steps:
        body = json.dumps(call | fields).encode()
        headers = {"Content-Type": "application/json", "Jambonz-Signature": jambonz.sign(body, SECRET)}
        started = time.monotonic()
        try:
            response = await client.post(path, content=body, headers=headers)
            seen.append(("jambonz", response.status_code, time.monotonic() - started))
        except httpx.HTTPError as exc:
            seen.append(("jambonz", type(exc).__name__, time.monotonic() - started))
        await asyncio.sleep(0.1)


async def gateway_audio(client: httpx.AsyncClient, url: str, until: float, seen: list) -> None:
    """The gateway's speech-to-text streams: a question the server's own synthesizer says (8 kHz LINEAR16), then
    silence, at real-time pace; every third stream ends with a frame of odd length (a protocol error), every fifth
    is dropped mid-sentence. Each stream is counted once: transcript, no speech, error (said to the gateway) or
    what broke."""
    import io
    import wave

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError

    said = await client.post(
        "/speech/tts",
        json={"language": "fr-FR", "type": "text", "text": "Quels sont les horaires de la mairie le samedi ?"},
        headers={"Authorization": f"Bearer {SECRET}", "Accept": "audio/wav"},
    )
    with wave.open(io.BytesIO(said.content)) as audio:
        speech = audio.readframes(audio.getnframes()) + bytes(2 * 8000)
    start = {"type": "start", "language": "fr-FR", "format": "raw", "encoding": "LINEAR16", "sampleRateHz": 8000}
    n = 0
    while time.monotonic() < until:
        n += 1
        frames = [speech[i : i + 320] for i in range(0, len(speech), 320)]
        dropped, odd = n % 5 == 0, n % 3 == 0
        outcome, started = "dropped", time.monotonic()
        try:
            async with connect(url, additional_headers={"Authorization": f"Bearer {SECRET}"}) as ws:
                await ws.send(json.dumps(start))
                for frame in frames[: len(frames) // 3] if dropped else frames:
                    await ws.send(frame)
                    await asyncio.sleep(0.02)
                if not dropped:
                    await ws.send(b"\x00\x01\x02" if odd else json.dumps({"type": "stop"}))
                    outcome = "no speech"
                    try:
                        async for message in ws:
                            outcome = "error" if json.loads(message)["type"] == "error" else "transcript"
                    except ConnectionClosedError:  # closed with an error code after saying why
                        if outcome != "error":
                            raise
        except Exception as exc:  # noqa: BLE001 - a refused or broken stream is counted, not fatal
            outcome = type(exc).__name__
        seen.append(("stt", outcome, time.monotonic() - started))
        await asyncio.sleep(0.5)


async def caller(client: httpx.AsyncClient, n: int, questions: list[str], until: float, seen: list) -> None:
    rng, call = random.Random(100 + n), 0
    headers = {"Authorization": f"Bearer {SECRET}", "X-Forwarded-For": "10.2.0.1"}
    while time.monotonic() < until:
        call += 1
        if call % 2 == 0:  # every other call through jambonz's webhooks
            await jambonz_call(client, rng, f"soak-j-{n}-{call}", questions, seen)
            continue
        for _ in range(rng.randint(1, 4)):  # a few questions per call
            body = {"session_id": f"soak-{n}-{call}", "transcript": rng.choice(questions), "confidence": 0.9}
            started = time.monotonic()
            try:
                response = await client.post("/api/v1/voice/turn", json=body, headers=headers)
                seen.append(("phone", response.status_code, time.monotonic() - started))
            except httpx.HTTPError as exc:
                seen.append(("phone", type(exc).__name__, time.monotonic() - started))
                response = None
            await _polite_wait(response)


async def staff(client: httpx.AsyncClient, questions: list[str], until: float, seen: list) -> None:
    rng, headers = random.Random(7), {"X-Forwarded-For": "10.3.0.1"}
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            response = await client.post(
                "/api/v1/turn", json={"text": rng.choice(questions), "channel": "eval"}, headers=headers
            )
            seen.append(("staff", response.status_code, time.monotonic() - started))
            for path in ("/metrics", "/readyz", "/api/v1/widget/config"):
                seen.append(("staff", (await client.get(path)).status_code, 0.0))
        except httpx.HTTPError as exc:
            seen.append(("staff", type(exc).__name__, time.monotonic() - started))
            response = None
        await _polite_wait(response)


async def _polite_wait(response: httpx.Response | None) -> None:
    retry = response.headers.get("Retry-After") if response is not None else None
    await asyncio.sleep(min(float(retry), 5.0) if retry else 0.1)


async def soak(url: str, capacity: int, seconds: float, warm_up: float, questions: list[str], pid: int) -> dict:
    process, seen, samples = psutil.Process(pid), [], []
    started = time.monotonic()
    until = started + seconds

    async def sample():
        while time.monotonic() < until + 5:
            samples.append((round(time.monotonic() - started), process.memory_info().rss, process.num_fds()))
            await asyncio.sleep(5)

    web_clients, callers = max(1, capacity // 2), max(1, capacity - capacity // 2 - 1)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=capacity + 8)) as c:
        await asyncio.gather(
            sample(),
            staff(c, questions, until, seen),
            *(web_resident(c, n, questions, until, seen) for n in range(web_clients)),
            *(caller(c, n, questions, until, seen) for n in range(callers)),
            gateway_audio(c, url.replace("http", "ws") + "/speech/stt", until, seen),
        )
    after_warm_up = next((s for s in samples if s[0] >= warm_up), samples[0])
    end = samples[-1]
    statuses = Counter(f"{kind} {status}" for kind, status, _ in seen)
    answered = [s for kind, status, s in seen if status == 200 and kind in ("web", "phone", "staff") and s]
    return {
        "minutes": round(seconds / 60, 1),
        "clients": {"web": web_clients, "phone": callers, "speech streams": 1, "staff": 1},
        "requests": len(seen),
        "status": dict(sorted(statuses.items())),
        "server_errors": sum(n for key, n in statuses.items() if key.split()[1].startswith("5") and "503" not in key),
        "client_errors_other_than_429": sum(
            n for key, n in statuses.items() if key.split()[1].startswith("4") and "429" not in key
        ),
        "turn_p50_s": percentile(answered, 0.5),
        "turn_p95_s": percentile(answered, 0.95),
        "rss_after_warm_up_mb": round(after_warm_up[1] / 2**20, 1),
        "rss_end_mb": round(end[1] / 2**20, 1),
        "rss_max_mb": round(max(s[1] for s in samples) / 2**20, 1),
        "rss_end_vs_warm_up_pct": round(100 * (end[1] - after_warm_up[1]) / after_warm_up[1], 2),
        "fds_after_warm_up": after_warm_up[2],
        "fds_end": end[2],
        "fds_max": max(s[2] for s in samples),
        "samples": samples,
    }


def markdown(r: dict) -> str:
    status = ", ".join(f"{k}: {v}" for k, v in r["status"].items())
    return (
        "\n".join(
            [
                f"Soak run: {r['minutes']} min at the capacity limit, clients {r['clients']}.",
                "",
                "| requests | 5xx other than 503 | 4xx other than 429 | turn p50 / p95 (s) "
                "| RSS after warm-up / end / max (MB) | end vs warm-up | fds after warm-up / end / max |",
                "|---|---|---|---|---|---|---|",
                f"| {r['requests']} | {r['server_errors']} | {r['client_errors_other_than_429']} "
                f"| {r['turn_p50_s']} / {r['turn_p95_s']} | {r['rss_after_warm_up_mb']} / {r['rss_end_mb']} / "
                f"{r['rss_max_mb']} | {r['rss_end_vs_warm_up_pct']} % | {r['fds_after_warm_up']} / {r['fds_end']} / "
                f"{r['fds_max']} |",
                "",
                f"Status counts: {status}.",
            ]
        )
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "var" / "index" / "demo")
    parser.add_argument("--capacity", type=int, default=4, help="GUICHET_MAX_TURNS_IN_PROGRESS of the server")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--warm-up-minutes", type=float, default=2)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "soak")
    args = parser.parse_args()

    cases = (ROOT / "eval/datasets/dev/demo.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in cases]
    env = {"GUICHET_VOICE_WEBHOOK_SECRET": SECRET, "GUICHET_FEEDBACK_DIR": str(args.out / "feedback")}
    env["GUICHET_STAFF_DIR"] = str(args.out / "staff")  # its database keeps the votes
    env["GUICHET_SPEECH_API_KEY"] = SECRET  # the gateway's speech streams too
    with served(args.index, args.port, args.capacity, env) as server:
        url = f"http://127.0.0.1:{args.port}"
        result = asyncio.run(
            soak(url, args.capacity, args.minutes * 60, args.warm_up_minutes * 60, questions, server.pid)
        )
    write_report(args.out, "soak", result, markdown(result))


if __name__ == "__main__":
    main()
