"""Load check on loopback: what the service does at 2x and 10x the number of turns it admits at once.

Starts ``guichet serve`` on the given index (or uses ``--url`` with ``--pid``), then for each level runs that many
simulated residents, each with its own address (X-Forwarded-For, the server trusting its proxy), asking the demo
questions back to back for ``--seconds``. Reports status counts, latency of answers and of refusals, the
server's memory, and writes ``var/loadcheck/loadcheck.json`` and ``.md``.

    python tools/loadcheck.py --index var/index/demo
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


async def resident(client: httpx.AsyncClient, n: int, questions: list[str], until: float, seen: list) -> None:
    address = f"10.0.{n // 250}.{n % 250 + 1}"
    i = n
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            response = await client.post(
                "/api/v1/turn",
                json={"text": questions[i % len(questions)]},
                headers={"X-Forwarded-For": address},
            )
            status, retry = response.status_code, response.headers.get("Retry-After")
        except httpx.HTTPError as exc:
            status, retry = type(exc).__name__, None
        seen.append((status, time.monotonic() - started))
        i += 1
        if retry:  # a polite client waits as told (capped, so the check stays bounded)
            await asyncio.sleep(min(float(retry), 5.0))


async def level(url: str, clients: int, seconds: float, questions: list[str], process: psutil.Process) -> dict:
    seen: list = []
    memory: list[int] = []
    until = time.monotonic() + seconds

    async def sample_memory():
        while time.monotonic() < until + 5:
            memory.append(rss_with_children(process))
            await asyncio.sleep(1)

    limits = httpx.Limits(max_connections=clients + 5)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        await asyncio.gather(sample_memory(), *(resident(client, n, questions, until, seen) for n in range(clients)))
    codes = Counter(str(status) for status, _ in seen)
    answered = [s for status, s in seen if status == 200]
    refused = [s for status, s in seen if status in (429, 503)]
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": len(seen),
        "status": dict(codes),
        "server_errors": sum(n for code, n in codes.items() if code.startswith("5") and code != "503"),
        "answers_per_minute": round(len(answered) / seconds * 60, 1),
        "answer_p50_s": percentile(answered, 0.5),
        "answer_p95_s": percentile(answered, 0.95),
        "refusal_p50_s": percentile(refused, 0.5),
        "refusal_max_s": round(max(refused), 3) if refused else None,
        "rss_start_mb": round(memory[0] / 2**20) if memory else None,
        "rss_max_mb": round(max(memory) / 2**20) if memory else None,
        "rss_end_mb": round(memory[-1] / 2**20) if memory else None,
    }


def rss_with_children(process: psutil.Process) -> int:
    """Resident memory of the server and its children (a managed llama-server is one)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total


def configuration_env(configuration: str) -> dict[str, str]:
    """``llama_cpp`` (the model in process) or ``llama_server:SLOTS[:SPECULATIVE]`` as the server's environment.

    >>> configuration_env("llama_server:4:ngram-simple")["GUICHET_LLM_SLOTS"]
    '4'
    """
    backend, _, rest = configuration.partition(":")
    if backend == "llama_cpp":
        return {"GUICHET_LLM_BACKEND": "llama_cpp"}
    if backend != "llama_server":
        raise SystemExit(f"unknown configuration {configuration!r}: llama_cpp or llama_server:SLOTS[:SPECULATIVE]")
    slots, _, speculative = rest.partition(":")
    return {"GUICHET_LLM_BACKEND": backend, "GUICHET_LLM_SLOTS": slots or "4", "GUICHET_LLM_SPECULATIVE": speculative}


async def saturation(url: str, clients: int, questions: list[str], process: psutil.Process) -> dict:
    """Every question asked once, by ``clients`` residents at once, each starting the next as soon as it has an
    answer (the server admitting them all): the same work for every engine, so answers per minute compare."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for question in questions:
        queue.put_nowait(question)
    seen: list = []
    peak = [rss_with_children(process)]

    async def ask(client: httpx.AsyncClient, n: int) -> None:
        while not queue.empty():
            question = queue.get_nowait()
            started = time.monotonic()
            response = await client.post(
                "/api/v1/turn", json={"text": question}, headers={"X-Forwarded-For": f"10.1.0.{n + 1}"}
            )
            seen.append((response.status_code, time.monotonic() - started))
            peak.append(rss_with_children(process))

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=httpx.Limits(max_connections=clients + 5)) as c:
        await asyncio.gather(*(ask(c, n) for n in range(clients)))
    elapsed = time.monotonic() - started
    answered = [s for status, s in seen if status == 200]
    return {
        "clients": clients,
        "questions": len(questions),
        "seconds": round(elapsed, 1),
        "status": dict(Counter(str(status) for status, _ in seen)),
        "answers_per_minute": round(len(answered) / elapsed * 60, 1),
        "answer_p50_s": percentile(answered, 0.5),
        "answer_p95_s": percentile(answered, 0.95),
        "rss_max_mb": round(max(peak) / 2**20),
    }


def status_counts(status: dict[str, int]) -> str:
    """``{"503": 48, "200": 19}`` as "200: 19, 503: 48"."""
    return ", ".join(f"{code}: {count}" for code, count in sorted(status.items()))


def saturation_markdown(results: list[dict]) -> str:
    lines = [
        "Saturation on loopback: the demo's answerable dev questions, each asked once, by N residents at once.",
        "",
        "| model engine | residents | questions | status | wall time (s) | answers/min | answer p50 / p95 (s) "
        "| RSS max (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        status = status_counts(r["status"])
        lines.append(
            f"| {r['configuration']} | {r['clients']} | {r['questions']} | {status} | {r['seconds']} "
            f"| {r['answers_per_minute']} | {r['answer_p50_s']} / {r['answer_p95_s']} | {r['rss_max_mb']} |"
        )
    return "\n".join(lines) + "\n"


@contextmanager
def served(index: Path, port: int, capacity: int, extra_env: dict | None = None) -> Iterator[subprocess.Popen]:
    """``guichet serve`` on ``index``, ready (``/readyz`` 200) inside the block, stopped after it."""
    env = os.environ | {
        "GUICHET_INDEX_DIR": str(index),
        "GUICHET_TRUST_PROXY_HEADERS": "true",
        "GUICHET_MAX_TURNS_IN_PROGRESS": str(capacity),
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "guichet.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_ready(process, port)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_ready(process: subprocess.Popen, port: int) -> None:
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit("the server exited while starting")
        time.sleep(1)
    raise SystemExit("the server was not ready after 300 s")


def write_report(out: Path, name: str, data: dict, text: str) -> None:
    """``<name>.json`` and ``<name>.md`` in ``out``; the Markdown is printed too."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2))
    (out / f"{name}.md").write_text(text)
    print(text)


def markdown(results: list[dict], capacity: int) -> str:
    lines = [
        f"Load check on loopback, capacity {capacity} turns in progress.",
        "",
        "| model engine | clients | requests | status | 5xx other than 503 | answers/min | answer p50 / p95 (s) "
        "| refusal p50 / max (s) | RSS start / max / end (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        status = status_counts(r["status"])
        lines.append(
            f"| {r['configuration']} | {r['clients']} | {r['requests']} | {status} | {r['server_errors']} "
            f"| {r['answers_per_minute']} "
            f"| {r['answer_p50_s']} / {r['answer_p95_s']} | {r['refusal_p50_s']} / {r['refusal_max_s']} "
            f"| {r['rss_start_mb']} / {r['rss_max_mb']} / {r['rss_end_mb']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "var" / "index" / "demo")
    parser.add_argument("--capacity", type=int, default=4, help="GUICHET_MAX_TURNS_IN_PROGRESS of the server")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--levels", default="2,10", help="multiples of the capacity")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "loadcheck")
    parser.add_argument(
        "--configurations",
        default="llama_cpp",
        help="model engines, one after the other: llama_cpp (in process) or llama_server:SLOTS[:SPECULATIVE], "
        "comma-separated (e.g. llama_cpp,llama_server:4)",
    )
    parser.add_argument(
        "--saturation",
        type=int,
        metavar="N",
        help="instead of the levels: N residents at once (all admitted) ask each answerable demo question once",
    )
    args = parser.parse_args()

    dev_cases = [json.loads(line) for line in (ROOT / "eval/datasets/dev/demo.jsonl").read_text().splitlines()]
    questions = [case["question"] for case in dev_cases]
    if args.saturation:
        answerable = [case["question"] for case in dev_cases if case.get("kind", "answer") == "answer"]
        results = []
        for configuration in args.configurations.split(","):
            with served(args.index, args.port, args.saturation, configuration_env(configuration)) as server:
                print(f"{configuration}: {len(answerable)} questions, {args.saturation} at once…", flush=True)
                url = f"http://127.0.0.1:{args.port}"
                result = asyncio.run(saturation(url, args.saturation, answerable, psutil.Process(server.pid)))
                results.append({"configuration": configuration, **result})
                print(json.dumps(results[-1]), flush=True)
        write_report(args.out, "saturation", {"levels": results}, saturation_markdown(results))
        return
    results = []
    for configuration in args.configurations.split(","):
        with served(args.index, args.port, args.capacity, configuration_env(configuration)) as server:
            for multiple in map(int, args.levels.split(",")):
                clients = multiple * args.capacity
                print(f"{configuration}: {clients} clients for {args.seconds:.0f} s…", flush=True)
                url = f"http://127.0.0.1:{args.port}"
                result = asyncio.run(level(url, clients, args.seconds, questions, psutil.Process(server.pid)))
                results.append({"configuration": configuration, **result})
                print(json.dumps(results[-1]), flush=True)
    report = {"capacity": args.capacity, "levels": results}
    write_report(args.out, "loadcheck", report, markdown(results, args.capacity))
    print("median answer latency across levels:", statistics.median(r["answer_p50_s"] or 0 for r in results))


if __name__ == "__main__":
    main()
