"""Whatever breaks while loading ends in a clear /readyz reason and a non-zero exit, never "loading" forever."""

import shutil
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.answer.validated_answers import ValidatedAnswers
from bot.engines.index import Index, live_generation
from bot.errors import ConfigError, IndexError_
from bot.settings import Settings
from bot.web.app import create_app
from bot.web.workers import WorkerRoll
from guichet.cli import app
from tests.conftest import fake_answerer, write
from tests.unit.test_api import settled


def _copy_of_index(fake_demo_index, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(fake_demo_index.generation.parent, index_dir)
    return index_dir, live_generation(index_dir)


def test_a_truncated_chunk_file_names_the_line_and_the_fix(fake_demo_index, tmp_path):
    index_dir, generation = _copy_of_index(fake_demo_index, tmp_path)
    chunks = (generation / "chunks.jsonl").read_bytes()
    (generation / "chunks.jsonl").write_bytes(chunks[: len(chunks) // 2])
    with pytest.raises(IndexError_, match=r"damaged \(chunks.jsonl: line \d+.*guichet index rollback"):
        Index.open(index_dir)


def test_a_damaged_vector_file_is_an_index_error(fake_demo_index, tmp_path):
    index_dir, generation = _copy_of_index(fake_demo_index, tmp_path)
    (generation / "dense.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(IndexError_, match="dense.faiss"):
        Index.open(index_dir)


def test_a_corrupt_validated_answer_names_its_line(tmp_path):
    path = write(
        tmp_path / "validated.jsonl", '{"key": "a", "corpus_hash": "h", "answer": "x", "citations": []}\n{"key": \n'
    )
    with pytest.raises(ConfigError, match=r"line 2: .*correct or delete that line"):
        ValidatedAnswers(path)


@pytest.mark.parametrize(
    "failure, reason",
    [
        (ConfigError("Validated answers file v.jsonl, line 2: bad"), "line 2"),
        (ModuleNotFoundError("No module named 'httpx'", name="httpx"), "Python package 'httpx' is missing"),
        (RuntimeError("Error in faiss::FileIOReader"), "Unexpected RuntimeError while loading"),
    ],
)
def test_any_loading_failure_ends_in_a_clear_readyz_reason(tmp_path, caplog, failure, reason):
    def load():
        raise failure

    with TestClient(create_app(load, Settings(feedback_dir=tmp_path / "feedback"))) as client:
        ready = settled(client)
        turn = client.post("/api/v1/turn", json={"text": "bonjour"})
    assert ready.status_code == 503 and reason in ready.json()["reason"]
    assert turn.status_code == 503 and "Guichet is not ready" in caplog.text


def test_ask_exits_non_zero_with_one_line_when_the_index_is_damaged(fake_demo_index, tmp_path, monkeypatch):
    index_dir, generation = _copy_of_index(fake_demo_index, tmp_path)
    (generation / "chunks.jsonl").write_text('{"broken": ', encoding="utf-8")
    monkeypatch.setenv("GUICHET_MODELS_DIR", str(tmp_path / "no-models"))
    result = CliRunner().invoke(app, ["ask", "horaires de la mairie", "--index", str(index_dir)])
    assert result.exit_code == 2 and "damaged" in result.output and "Traceback" not in result.output


def test_several_workers_are_ready_only_when_each_has_loaded(fake_demo_index, tmp_path):
    """A connection may reach any worker: /readyz waits for all of them, and a dead worker's mark does not count."""
    (folder := tmp_path / "ready").mkdir()
    roll = WorkerRoll(folder, expected=3)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    roll.mark_ready(dead.pid)
    answerer = fake_answerer(fake_demo_index, '{"source": "S1", "reponse": "86 €."}', tmp_path)
    others = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2)]
    try:
        with TestClient(create_app(lambda: answerer, Settings(feedback_dir=tmp_path / "feedback"), roll)) as client:
            alone = settled(client)  # this worker has loaded and marked itself
            roll.mark_ready(others[0].pid)
            one_left = client.get("/readyz")
            roll.mark_ready(others[1].pid)
            every = client.get("/readyz")
    finally:
        for other in others:
            other.kill()
            other.wait()
    assert alone.status_code == 503 and alone.json()["reason"].startswith("2 of 3 worker processes still loading")
    assert one_left.json()["reason"].startswith("1 of 3") and every.status_code == 200


def test_eval_paraphrases_says_how_to_turn_the_lookup_by_meaning_on(fake_demo_index, tmp_path, monkeypatch):
    from guichet import eval_cli
    from tests.conftest import fake_answerer

    monkeypatch.setattr(eval_cli, "_answerer", lambda index: fake_answerer(fake_demo_index, "{}", tmp_path))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"asked": "prix passeport", "validated": "combien coûte un passeport", "same": true}\n')
    result = CliRunner().invoke(app, ["eval", "paraphrases", str(pairs)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "min_similarity" in result.output and "GUICHET_THRESHOLDS_FILE" in result.output
