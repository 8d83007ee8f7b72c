"""Re-indexing from the staff console: the child build's progress and outcome, one at a time, and every worker
moving to the new generation while the previous one answers. The child here is a stand-in script; the real
``guichet ingest`` is started from the console in ``tests/e2e/test_staff_browser.py``."""

import json
import sys
import time

import pytest
from fastapi.testclient import TestClient

from bot.answer.steps.passage_retriever import PassageRetriever
from bot.answer.steps.validated_answer import ValidatedAnswerLookup
from bot.engines.index import Index
from bot.settings import Settings
from bot.web.app import create_app
from bot.web.routes import staff as staff_routes
from bot.web.staff.accounts import AccountStore
from bot.web.staff.reindexing import ReindexBusy, Reindexing, SyncSchedule
from tests.conftest import DEMO, FakeEmbedder, fake_answerer, write
from tests.unit.test_api import settled
from tests.unit.test_staff import PASSPORT, PASSWORD, csrf_of, log_in

# Stands for `python -m guichet`: reports two steps of progress, waits for a file, then succeeds or fails.
STAND_IN = """
import json, os, pathlib, sys, time
args = sys.argv[1:]
status = pathlib.Path(args[args.index("--status-file") + 1])
(pathlib.Path(args[args.index("--index") + 1]) / "argv.json").write_text(json.dumps(args))
(pathlib.Path(args[args.index("--index") + 1]) / "sources_dir").write_text(os.environ.get("GUICHET_SOURCES_DIR", ""))
for done in (1, 2):
    status.write_text(json.dumps({"stage": "Calcul des vecteurs", "done": done, "total": 2}))
    time.sleep(0.2)
go = pathlib.Path(args[args.index("--index") + 1]) / "go"
while not go.exists():
    time.sleep(0.05)
if go.read_text() == "fail":
    print("Erreur : le dossier est illisible.")
    sys.exit(2)
if go.read_text() == "partial":
    print("site : robots.txt answered 503: nothing fetched")
    sys.exit(1)
"""


def wait_until(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def reindexing(tmp_path):
    script = write(tmp_path / "stand_in.py", STAND_IN)
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    return Reindexing(tmp_path / "staff", index_dir, (sys.executable, str(script)), sources_dir=tmp_path / "own")


def test_a_reindexing_reports_its_progress_and_ends_finished(reindexing, tmp_path):
    assert reindexing.status()["state"] == "none"
    started = reindexing.start({"roots": [str(DEMO)], "exclude": ["README*"]}, "claire")
    assert started["state"] == "running"
    wait_until(lambda: reindexing.status().get("done") == 2)
    assert reindexing.status()["state_fr"] == "en cours"
    with pytest.raises(ReindexBusy):
        reindexing.start({"roots": [str(DEMO)]}, "paul")
    (reindexing.index_dir / "go").write_text("ok")
    wait_until(lambda: reindexing.status()["state"] != "running")
    assert reindexing.status()["state"] == "finished"


def test_a_failed_reindexing_shows_what_the_build_said(reindexing):
    reindexing.start({"roots": [str(DEMO)]}, "claire")
    (reindexing.index_dir / "go").write_text("fail")
    wait_until(lambda: reindexing.status()["state"] != "running")
    status = reindexing.status()
    assert status["state"] == "failed" and "le dossier est illisible" in status["error"]


def test_an_index_built_from_sources_is_updated_by_syncing_them_again(reindexing, tmp_path):
    """A source that failed (exit 1) is not a failed update: the index was built from the rest."""
    sources = write(tmp_path / "sources.yaml", "sources:\n  - {name: docs, kind: folder, path: docs}\n")
    reindexing.start({"roots": [str(tmp_path / "sources" / "docs")], "sources_file": str(sources)}, "claire")
    (reindexing.index_dir / "go").write_text("partial")
    wait_until(lambda: reindexing.status()["state"] != "running")
    args = json.loads((reindexing.index_dir / "argv.json").read_text())
    assert args[:3] == ["sync", "--sources", str(sources)]
    # the sources' copies go to this index's commune's folder, not the deployment's (several communes)
    assert (reindexing.index_dir / "sources_dir").read_text() == str(tmp_path / "own")
    status = reindexing.status()
    assert status["state"] == "partial" and "dernier contenu est gardé" in status["state_fr"]
    assert "robots.txt" in status["error"]


def test_the_documents_page_shows_each_sources_last_sync(tmp_path):
    from ingestion.builder import build

    staff_routes._auth.cache_clear()
    staff_dir, index_dir = tmp_path / "staff", tmp_path / "index"
    AccountStore(staff_dir).add("claire", "admin", PASSWORD)
    sources = write(tmp_path / "sources.yaml", f"sources:\n  - {{name: docs, kind: folder, path: {DEMO}}}\n")
    build([DEMO], index_dir, FakeEmbedder(), sources_file=sources)
    settings = Settings(staff_dir=staff_dir, sources_dir=tmp_path / "mirrors")
    settings.sources_dir.mkdir()
    reports = [
        {"name": "fiches", "kind": "dila", "status": "updated", "added": 0, "changed": 3, "removed": 1,
         "unchanged": 389, "problems": [], "error": ""},
        {"name": "site", "kind": "website", "status": "failed", "added": 0, "changed": 0, "removed": 0,
         "unchanged": 0, "problems": [], "error": "robots.txt answered 503: nothing fetched"},
    ]  # fmt: skip
    settings.last_sync_file.write_text(json.dumps({"finished": "2026-12-07T06:00:00+00:00", "sources": reports}))
    answerer = fake_answerer(Index.open(index_dir), PASSPORT, tmp_path)
    with TestClient(create_app(lambda: answerer, settings), follow_redirects=False) as client:
        settled(client)
        log_in(client)
        page = client.get("/staff/documents").text
    assert "Dernière lecture des sources" in page and str(sources) in page
    assert "en échec, dernier contenu gardé" in page and "robots.txt answered 503" in page
    assert "fiches Service-Public.fr" in page and "site internet" in page


def test_one_worker_syncs_the_sources_on_schedule(reindexing, tmp_path):
    sources = write(tmp_path / "sources.yaml", "sources:\n  - {name: docs, kind: folder, path: docs}\n")
    manifest = {"roots": [str(DEMO)]}
    first = SyncSchedule(reindexing, 24, lambda: manifest)
    other_worker = SyncSchedule(Reindexing(tmp_path / "staff", reindexing.index_dir), 24, lambda: manifest)
    assert first.start() and not other_worker.start()
    assert first.due() is None  # an index built from folders by hand is not synced
    manifest["sources_file"] = str(sources)
    assert first.due()["by"] == "mise à jour planifiée"
    assert first.due() is None  # one update at a time
    (reindexing.index_dir / "go").write_text("ok")
    wait_until(lambda: reindexing.status()["state"] == "finished")
    first.stop()
    assert other_worker.start()  # the lock is free again
    other_worker.stop()


def test_a_reindexing_of_missing_folders_is_refused_before_it_starts(reindexing, tmp_path):
    with pytest.raises(FileNotFoundError):
        reindexing.start({"roots": [str(tmp_path / "gone")]}, "claire")
    assert reindexing.status()["state"] == "none"


def test_a_worker_moves_to_a_new_generation_and_answers_from_it(tmp_path):
    from bot.engines.index import Index
    from ingestion.builder import build

    corpus = tmp_path / "corpus"
    write(corpus / "piscine.md", "# Piscine\n\nLa piscine municipale ouvre à 9 h.\n")
    index_dir = tmp_path / "index"
    build([corpus], index_dir, FakeEmbedder())
    answerer = fake_answerer(Index.open(index_dir), PASSPORT, tmp_path)
    settings = Settings(staff_dir=tmp_path / "staff", index_dir=index_dir)
    with TestClient(create_app(lambda: answerer, settings)) as client:
        settled(client)
        service = client.app.state.service
        before = service.answerer.step(PassageRetriever).index.generation
        write(corpus / "cantine.md", "# Cantine\n\nLe repas coûte 3,20 €.\n")
        build([corpus], index_dir, FakeEmbedder())
        service._index_checked = 0.0
        service.follow_index()
        wait_until(lambda: service.answerer.step(PassageRetriever).index.generation != before)
        moved = service.answerer
        assert moved.step(PassageRetriever).index.manifest["document_count"] == 2
        assert moved.step(ValidatedAnswerLookup).corpus_hash == moved.info["index"]["corpus_hash"]
        assert client.post("/api/v1/turn", json={"text": "prix du repas à la cantine"}).status_code == 200


def test_only_an_administrator_starts_a_reindexing(fake_demo_index, tmp_path):
    staff_routes._auth.cache_clear()
    staff_dir = tmp_path / "staff"
    AccountStore(staff_dir).add("paul", "reviewer", PASSWORD)
    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    with TestClient(create_app(lambda: answerer, Settings(staff_dir=staff_dir)), follow_redirects=False) as client:
        settled(client)
        log_in(client, "paul")
        page = client.get("/staff/documents").text
        assert "Réservé aux administrateurs" in page
        refused = client.post("/staff/documents/reindexer", data={"csrf": csrf_of(page)})
        assert refused.status_code == 403
        assert json.loads(client.get("/staff/documents/etat").text)["state"] == "none"
