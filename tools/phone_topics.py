"""How often a badly heard caller's question lands on the right topic (issue #33), on the speech bench's Whisper
transcripts (``python -m tools.speech_bench --no-turns`` writes them to ``var/bench/speech/speech.json``).

For each spoken town question, the topic its own words land on (by meaning, the embedder) is taken as the right
one; each transcript (clean and noisy line) is then matched as the dialog matches it (``bot.phone.topics``), for a
grid of thresholds: landed on the right topic, on another one (the caller says no and is asked again), or on none
(asked to repeat, as before).

    python -m tools.phone_topics [--speech var/bench/speech/speech.json | what the bench printed] [--index DIR]
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path

from bot.settings import REPO_ROOT


def transcripts(path: Path) -> dict[str, list[dict]]:
    """The bench's rows per line: from its report, or from what it printed (``sq01 clean: '…' (8/10)``) when it
    was stopped before the end."""
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))["rows"]
    references = {
        q["id"]: q["text"]
        for q in map(json.loads, (REPO_ROOT / "eval/datasets/speech/town-questions.jsonl").read_text().splitlines())
    }
    rows: dict[str, list[dict]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        found = re.match(r"^(sq\d+) (.+?): (['\"].*['\"]) \(\d+/\d+\)$", line)
        if found:
            heard = {"id": found[1], "reference": references[found[1]], "transcript": ast.literal_eval(found[3])}
            rows.setdefault(found[2], []).append(heard)
    return rows


def same_topic(landed: str, right: str | None) -> bool:
    """Two names of one topic share a topic word ("Le marché hebdomadaire", "marché"; "permis de construire",
    "Urbanisme : permis de construire et déclaration préalable")."""
    from bot.language.words import content_terms

    return bool(right) and bool(content_terms(landed) & content_terms(right or ""))


def main() -> None:
    from bot.answer.pipeline import resolve_embedder_path
    from bot.engines.embedder import SentenceTransformerEmbedder
    from bot.engines.index import Index
    from bot.phone.topics import Topics
    from bot.settings import Settings, load_yaml

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speech", type=Path, default=REPO_ROOT / "var" / "bench" / "speech" / "speech.json")
    parser.add_argument("--index", type=Path, default=REPO_ROOT / "var" / "index" / "demo")
    args = parser.parse_args()
    settings = Settings()
    embedder = SentenceTransformerEmbedder(resolve_embedder_path(settings), settings.embedder_dtype)
    titles = dict.fromkeys(c.title for c in Index.open(args.index).chunks)
    town = load_yaml(settings.town_file)
    names = Topics.of_town(town, titles)
    rows = transcripts(args.speech)
    by_meaning = Topics(names, embedder, min_meaning=0.0, min_sound=2.0)  # the reference: meaning only
    right = {r["id"]: by_meaning.closest(r["reference"]) for r in rows["clean"]}
    print(f"{len(names)} topics; each question's own topic by meaning:")
    for r in rows["clean"]:
        print(f"  {r['id']} {r['reference']!r} -> {right[r['id']]!r}")
    print("line | min sound | min meaning | right | other topic | none")
    for line, heard in rows.items():
        for min_sound in (0.8, 0.85, 0.9, 0.95, 2.0):
            for min_meaning in (0.55, 0.6, 0.65, 0.7, 2.0):
                topics = Topics(names, embedder, min_meaning, min_sound, town_name=town["town_name"])
                landed = [(topics.closest(r["transcript"]), right[r["id"]]) for r in heard]
                good = sum(1 for got, want in landed if got and same_topic(got, want))
                wrong = sum(1 for got, want in landed if got and not same_topic(got, want))
                print(f"{line} | {min_sound} | {min_meaning} | {good} | {wrong} | {len(landed) - good - wrong}")


if __name__ == "__main__":
    main()
