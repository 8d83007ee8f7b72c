"""Several communes on one server (#34): resident memory and start-up time for 1, 10, 50… communes.

Each commune is a folder with the demo town's file (its own name) and a copy of an index (the demo's by default:
a town corpus the size of the demo's). They are registered in a fresh deployment database, then one
``guichet serve`` is started for all of them; measured: seconds from the start to ``/readyz`` ready, the server's
resident memory then (with its children: a llama-server, if any), and one answered question for the first and the
last commune (a sanity check, its time reported). Reported, not asserted; ``var/bench/communes.{json,md}``.

    python -m tools.communes_bench --communes 1 --communes 10 --communes 50
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bot.engines.llama_server import free_port
from bot.state.communes import CommuneRegistry
from bot.state.database import sqlite_url
from tools.loadcheck import ROOT, rss_with_children, served, write_report

QUESTION = "Quels sont les horaires d'ouverture de la mairie ?"


def folders(root: Path, count: int, index: Path) -> list[str]:
    """``count`` commune folders under ``root``, registered in ``root/deployment``; their identifiers."""
    town = (ROOT / "config" / "town.yaml").read_text(encoding="utf-8")
    registry = CommuneRegistry(sqlite_url(root / "deployment" / "guichet.db"))
    slugs = []
    for n in range(1, count + 1):
        slug, folder = f"commune-{n:02d}", root / f"commune-{n:02d}"
        folder.mkdir(parents=True)
        (folder / "town.yaml").write_text(town.replace("Valbourg-sur-Loire", f"Commune {n}"), encoding="utf-8")
        shutil.copytree(index, folder / "index")
        registry.add(slug, f"Commune {n}", folder, [f"{slug}.localhost"], [])
        slugs.append(slug)
    return slugs


def rss_mb(pid: int) -> int:
    return round(rss_with_children(psutil.Process(pid)) / 2**20)


def measure(count: int, index: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="guichet-communes-") as folder:
        root = Path(folder)
        slugs = folders(root, count, index)
        env = {"GUICHET_STAFF_DIR": str(root / "deployment"), "GUICHET_FEEDBACK_DIR": str(root / "fb")}
        port, started = free_port(), time.monotonic()
        with served(index, port, capacity=4, extra_env=env) as process:
            ready_s = round(time.monotonic() - started, 1)
            rss_ready = rss_mb(process.pid)
            base, answers = f"http://127.0.0.1:{port}", {}
            for slug in dict.fromkeys([slugs[0], slugs[-1]]):
                asked = time.monotonic()
                reply = httpx.post(
                    f"{base}/api/v1/turn", json={"text": QUESTION}, headers={"host": f"{slug}.localhost"}, timeout=300
                ).json()
                answers[slug] = {"outcome": reply.get("outcome"), "seconds": round(time.monotonic() - asked, 1)}
            return {
                "communes": count,
                "ready_s": ready_s,
                "rss_ready_mb": rss_ready,
                "rss_after_answers_mb": rss_mb(process.pid),
                "answers": answers,
            }


def markdown(results: list[dict], index: Path) -> str:
    lines = [
        f"Communes on one server, each with a copy of `{index}`; one `guichet serve`, models loaded once.",
        "",
        "| communes | start to ready (s) | RSS at ready (MB) | RSS after 2 answers (MB) "
        "| first / last commune's answer |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        answers = " / ".join(f"{a['outcome']} {a['seconds']} s" for a in r["answers"].values())
        lines.append(
            f"| {r['communes']} | {r['ready_s']} | {r['rss_ready_mb']} | {r['rss_after_answers_mb']} | {answers} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communes", type=int, action="append", help="Communes on the server (repeatable).")
    parser.add_argument("--index", type=Path, default=ROOT / "var" / "index" / "demo", help="Each commune's index.")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench")
    args = parser.parse_args()
    results = [measure(count, args.index) for count in args.communes or [1, 10]]
    write_report(args.out, "communes", {"index": str(args.index), "results": results}, markdown(results, args.index))


if __name__ == "__main__":
    main()
