"""Index generations: a killed build never breaks the live index, and a bad update can be rolled back."""

import json
import random
import subprocess
import sys
import time

from typer.testing import CliRunner

from bot.engines.embedder import FakeEmbedder
from bot.engines.index import Index, generations
from bot.settings import REPO_ROOT
from guichet.cli import app
from ingestion.builder import build
from tests.conftest import fake_answerer, write

BUILD = """
import sys
from pathlib import Path
from bot.engines.embedder import FakeEmbedder
from ingestion.builder import build

def progress(stage, done, total):
    print(stage, done, total, flush=True)

build([Path(sys.argv[1])], Path(sys.argv[2]), FakeEmbedder(), progress=progress)
print("done", flush=True)
"""


def _corpus(folder, version: str, documents: int = 400):
    for n in range(documents):
        paragraphs = "\n\n".join(f"Paragraphe {k} de la page {n}, version {version}." * 8 for k in range(6))
        write(folder / f"page-{n:03}.md", f"# Page {n}\n\n## Partie\n\n{paragraphs}\n")


def _run_build(corpus, index_dir, kill_after: float | None = None) -> tuple[bool, float]:
    """A build in a child process, killed ``kill_after`` seconds after it started reading: (finished, seconds)."""
    command = [sys.executable, "-c", BUILD, str(corpus), str(index_dir)]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as child:
        child.stdout.readline()  # the build has started reading the corpus
        started = time.monotonic()
        if kill_after is None:
            finished = any(line.startswith("done") for line in child.stdout)
            return finished, time.monotonic() - started
        time.sleep(kill_after)
        child.kill()
        return "done" in child.stdout.read(), kill_after


def test_a_build_killed_at_random_points_always_leaves_a_live_index(tmp_path):
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    _corpus(corpus, "a")
    complete, duration = _run_build(corpus, index_dir)  # reading, embedding and writing, without start-up
    assert complete
    rng, finished = random.Random(13), []
    for attempt, share in enumerate([0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95]):
        _corpus(corpus, f"v{attempt}")
        finished.append(_run_build(corpus, index_dir, kill_after=duration * share * rng.uniform(0.8, 1.2))[0])
        index = Index.open(index_dir)  # never damaged, never missing
        assert len(index.chunks) == index.dense.ntotal > 0
        question = "page 3 partie"
        assert index.search(FakeEmbedder().embed_query(question), question, k=1)
    assert not all(finished)  # some builds were cut short
    final = build([corpus], index_dir, FakeEmbedder())  # and the next build completes
    assert final.chunks == len(Index.open(index_dir).chunks) and final.generation == generations(index_dir)[-1]["name"]


def test_rollback_serves_the_previous_generation_again(tmp_path):
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    page = write(corpus / "piscine.md", "# Piscine\n\nLa piscine ouvre à 9 h.\n")
    build([corpus], index_dir, FakeEmbedder())
    page.write_text("# Piscine\n\nLa piscine ouvre à 19 h.\n", encoding="utf-8")  # a bad update
    build([corpus], index_dir, FakeEmbedder())
    assert "19 h" in Index.open(index_dir).chunks[0].text

    listed = CliRunner().invoke(app, ["index", "list", "--index", str(index_dir)])
    rolled = CliRunner().invoke(app, ["index", "rollback", "--index", str(index_dir)])
    assert listed.exit_code == 0 and listed.output.count("gen-") == 2, listed.output
    assert rolled.exit_code == 0, rolled.output
    reply = json.dumps({"source": "S1", "reponse": "La piscine ouvre à 9 h."})
    turn = fake_answerer(Index.open(index_dir), reply, tmp_path).answer("La piscine ouvre quand ?")
    assert turn.outcome == "answered" and "ouvre à 9 h" in turn.citations[0].quote  # the previous answer again
    [live] = [g for g in generations(index_dir) if g["live"]]
    assert live["name"] == generations(index_dir)[0]["name"]
    again = CliRunner().invoke(app, ["index", "rollback", "--index", str(index_dir)])
    assert again.exit_code == 2 and "No earlier generation" in again.output


def test_only_the_newest_generations_are_kept(tmp_path):
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    page = write(corpus / "a.md", "# A\n\nversion 0\n")
    for n in range(5):
        page.write_text(f"# A\n\nversion {n}\n", encoding="utf-8")
        build([corpus], index_dir, FakeEmbedder(), keep=3)
    kept = generations(index_dir)
    assert len(kept) == 3 and kept[-1]["live"]
    assert json.loads((index_dir / kept[-1]["name"] / "manifest.json").read_text())["chunk_count"] == 1
