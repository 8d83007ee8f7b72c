"""The service's state in a database: SQLite by default, a real PostgreSQL server the test starts itself; and the
one command that moves a file-based deployment's staff accounts, audit log, feedback, question sets and runs in."""

import datetime as dt
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.errors import GuichetError
from bot.settings import REPO_ROOT, Settings
from bot.state.database import Database, sqlite_url
from bot.web.app import create_app
from bot.web.feedback import FeedbackStore
from bot.web.routes import staff as staff_routes
from bot.web.routes import staff_sets as staff_sets_routes
from bot.web.staff.accounts import AccountError, AccountStore
from bot.web.staff.auth import StaffAuth
from bot.web.staff.jobs import process_token
from bot.web.staff.migration import migrate, waiting
from bot.web.staff.question_sets import QuestionSets, SetError
from bot.web.staff.run_records import RunRecords
from eval.dataset import Case
from tests.conftest import fake_answerer
from tests.postgres import running_postgres
from tests.unit.test_api import settled
from tests.unit.test_staff import PASSPORT, PASSWORD, csrf_of, log_in

# A file-based deployment's staff folder and feedback folder, written by the code before the database: the accounts
# and audit log by AccountStore (2026-12-07), the question sets, runs and feedback by QuestionSets, Runs and
# FeedbackStore at commit dbde80a (the fake models; the third run caught while it ran, its server since gone).
FILES = Path(__file__).parents[1] / "fixtures" / "staff-files"
FEEDBACK_FILES = Path(__file__).parents[1] / "fixtures" / "feedback-files"
FIRST_RUN, SECOND_RUN, CAUGHT_RUN = "20261208-010853-2e60", "20261208-010855-65e3", "20261208-010856-8d2a"


@pytest.fixture(scope="module")
def postgresql():
    with running_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "state.db")
    url = request.getfixturevalue("postgresql")
    AccountStore(tmp_path, url).db.engine.dispose()
    store = AccountStore(tmp_path, url)
    with store.db.transaction() as db:  # each test starts from empty tables (the schema stays)
        db.exec_driver_sql("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
        db.exec_driver_sql(
            "TRUNCATE audit, login_throttle, staff_sessions, accounts, communes, feedback, question_sets, run_results, "
            "runs"
        )
        db.exec_driver_sql("ALTER TABLE audit ENABLE TRIGGER audit_append_only")
    return url


def test_accounts_sessions_and_throttling_live_in_the_database(database_url, tmp_path):
    store = AccountStore(tmp_path, database_url)
    assert store.db.revision() == Database.head() == "0003"  # the migrations ran when the database was opened
    store.add("claire", "admin", PASSWORD)
    with pytest.raises(AccountError, match="existe déjà"):
        store.add("claire", "reviewer", PASSWORD)
    now = [1000.0]
    workers = [StaffAuth(AccountStore(tmp_path, database_url), b"k" * 32, clock=lambda: now[0]) for _ in range(2)]
    session = workers[0].open(store.verify("claire", PASSWORD))
    cookie = workers[0].cookie(session)
    seen_elsewhere = workers[1].read(cookie).account  # another worker knows the session
    assert seen_elsewhere == store.load()["claire"]
    workers[1].close(workers[1].read(cookie))
    assert workers[0].read(cookie) is None  # logged out on one worker: ended on all
    again = workers[0].cookie(workers[0].open(store.verify("claire", PASSWORD)))
    store.disable("claire", by="marc")
    assert workers[1].read(again) is None and store.verify("claire", PASSWORD) is None
    waits = [workers[n % 2].login_wait("paul", "10.0.0.1") for n in range(6)]
    assert waits[:5] == [0.0] * 5 and waits[5] == pytest.approx(30.0)


def test_the_audit_log_is_append_only_and_chained_under_concurrent_writers(database_url, tmp_path):
    store = AccountStore(tmp_path, database_url)

    def writer(n: int) -> None:
        for k in range(5):
            store.audit(f"agent{n}", "connexion", f"essai {k}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.verify_audit() == (40, None)  # every row follows exactly one other: no fork, none lost
    for statement in ("UPDATE audit SET who = 'x'", "DELETE FROM audit"):
        with pytest.raises(Exception, match="append-only"), store.db.transaction() as db:
            db.exec_driver_sql(statement)
    assert len(store.audit_entries()) == 40


def test_the_console_on_postgresql_logs_in_and_out_through_http(postgresql, fake_demo_index, tmp_path):
    staff_routes._auth.cache_clear()
    AccountStore(tmp_path / "staff", postgresql).add("lucie", "admin", PASSWORD)
    settings = Settings(staff_dir=tmp_path / "staff", database_url=postgresql)
    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    with TestClient(create_app(lambda: answerer, settings), follow_redirects=False) as client:
        settled(client)
        assert log_in(client, name="lucie").status_code == 303
        kept = client.cookies.get("guichet_staff")
        client.post("/staff/deconnexion", data={"csrf": csrf_of(client.get("/staff/").text)})
        client.cookies.set("guichet_staff", kept, path="/staff")
        assert client.get("/staff/").status_code == 303
    actions = [e["action"] for e in AccountStore(tmp_path / "staff", postgresql).audit_entries()]
    assert actions[-3:] == ["compte créé", "connexion", "déconnexion"]
    assert not list((tmp_path / "staff").glob("guichet.db*"))  # nothing written beside PostgreSQL


def test_a_file_based_deployment_moves_into_the_database_with_one_command(tmp_path, fake_demo_index):
    staff, feedback = tmp_path / "staff", tmp_path / "feedback"
    shutil.copytree(FILES, staff)
    shutil.copytree(FEEDBACK_FILES, feedback)
    env = {"GUICHET_STAFF_DIR": str(staff), "GUICHET_FEEDBACK_DIR": str(feedback), "PATH": "/usr/bin:/bin"}
    env["GUICHET_FEEDBACK_RETENTION_DAYS"] = "36500"  # the fixture's votes are kept whatever today's date

    def guichet(*args):
        command = [sys.executable, "-m", "guichet.cli", *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120)

    refused = guichet("serve", "--port", "1")
    said = refused.stderr + refused.stdout
    assert refused.returncode == 2 and "guichet staff migrate" in said
    assert all(str(p) in said for p in (staff / "accounts.json", staff / "sets", staff / "runs", feedback))
    migrated = guichet("staff", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "3 compte(s) et 7 ligne(s) du journal, 5 avis, 3 jeu(x) de questions et 3 essai(s)" in migrated.stdout
    assert sorted(p.name for p in staff.iterdir() if "migrated" in p.name) == [
        "accounts.json.migrated",
        "audit.jsonl.migrated",
        "runs.migrated",
        "sets.migrated",
    ]
    assert list(feedback.iterdir()) == []  # imported, then deleted: a copy would outlive the retention
    store = AccountStore(staff)
    assert store.verify("claire", "mot-de-passe-de-claire").role == "admin"  # the same argon2 hashes
    assert store.verify("ancien", "mot-de-passe-ancien") is None  # still disabled
    entries = store.audit_entries()
    assert entries[0] == {"at": "2026-12-07T17:57:10+00:00", "who": "cli", "action": "compte créé",
                          "detail": "claire (admin)"}  # fmt: skip
    assert [e["action"] for e in entries[-3:]] == ["connexion refusée", "import des fichiers", "import des fichiers"]
    assert entries[-1]["detail"] == "5 avis, 3 jeu(x) de questions, 3 essai(s)"
    assert guichet("staff", "audit", "--verify").returncode == 0
    again = guichet("staff", "migrate")
    assert again.returncode == 2 and "Rien à importer" in again.stderr + again.stdout
    assert waiting(Settings(staff_dir=staff, feedback_dir=feedback)) == []  # serve no longer stops for files
    _the_console_reads_what_was_imported(staff, feedback, fake_demo_index, tmp_path)
    import sqlite3

    raw = sqlite3.connect(staff / "guichet.db")
    raw.executescript("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id = 4;")
    raw.close()
    broken = guichet("staff", "audit", "--verify")
    assert broken.returncode == 2 and "Journal altéré : la ligne 5" in broken.stderr + broken.stdout


def _the_console_reads_what_was_imported(staff: Path, feedback: Path, index, tmp_path: Path) -> None:
    """The imported sets, runs (with their cases' traces, the gate's verdict and a comparison) and feedback, as
    an agent finds them in the console."""
    staff_routes._auth.cache_clear()
    staff_sets_routes._runs.cache_clear()
    AccountStore(staff).add("lucie", "admin", PASSWORD)
    settings = Settings(staff_dir=staff, feedback_dir=feedback, feedback_retention_days=36500)
    app = create_app(lambda: fake_answerer(index, PASSPORT, tmp_path), settings)
    with TestClient(app, follow_redirects=False) as client:
        settled(client)
        assert log_in(client, name="lucie").status_code == 303
        sets_page = client.get("/staff/jeux").text
        run_page = client.get(f"/staff/essais/{FIRST_RUN}").text
        case_page = client.get(f"/staff/essais/{FIRST_RUN}/cas/q2").text
        compared = client.get("/staff/comparer", params={"avant": FIRST_RUN, "apres": SECOND_RUN})
        caught = client.get(f"/staff/essais/{CAUGHT_RUN}/etat").json()
        edited = client.get("/staff/jeux/avis").text
        opinions = client.get("/staff/avis").text
    assert all(f"/staff/jeux/{name}" in sets_page for name in ("hebdo", "en-csv", "avis"))
    assert all(f"/staff/essais/{run}" in sets_page for run in (FIRST_RUN, SECOND_RUN, CAUGHT_RUN))
    assert "3 questions sur 3" in run_page and "Verdict de mise en service" in run_page
    assert "manque 9 €" in case_page and "Comment la réponse a été faite" in case_page
    assert compared.status_code == 200 and "Régressions (0)" in compared.text
    assert caught["state"] == "interrupted" and (caught["done"], caught["total"]) == (1, 3)
    assert "horaires de l&#39;état civil le samedi" in edited
    assert "horaires du marché le dimanche" in opinions and "concession au cimetière" in opinions


def test_workers_starting_together_on_a_new_postgresql_database_migrate_it_once(postgresql):
    from sqlalchemy import create_engine

    from bot.state.database import Database

    admin = create_engine(postgresql, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql("CREATE DATABASE fresh")
    admin.dispose()
    url = postgresql.replace("/postgres?", "/fresh?")
    workers = [Database(url) for _ in range(3)]
    errors: list[Exception] = []

    def start(database):
        try:
            database.upgrade()
        except Exception as exc:  # noqa: BLE001 - collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and {w.revision() for w in workers} == {Database.head()}
    for w in workers:
        w.engine.dispose()


def test_a_damaged_file_of_the_old_deployment_is_named_and_nothing_is_imported(tmp_path):
    staff = tmp_path / "staff"
    shutil.copytree(FILES, staff)
    with (staff / "audit.jsonl").open("a", encoding="utf-8") as log:
        log.write('{"at": "2026-12-07", "who": "paul"\n')  # a line cut short
    store = AccountStore(staff)
    with pytest.raises(AccountError, match=r"audit\.jsonl est illisible .* rien n'a été importé"):
        store.import_files()
    assert store.load() == {} and store.audit_entries() == []
    assert sorted(p.name for p in staff.iterdir() if p.suffix in (".json", ".jsonl")) == [
        "accounts.json",
        "audit.jsonl",
    ]


def test_the_communes_of_a_deployment_live_in_its_database(database_url, tmp_path):
    from bot.state.communes import CommuneError, CommuneRegistry

    registry = CommuneRegistry(database_url)
    registry.add("valbourg", "Valbourg-sur-Loire", tmp_path / "v", ["Assistant.Valbourg.fr:443"], ["+33 2 99 00 12 34"])
    with pytest.raises(CommuneError, match="déjà à la commune « valbourg »"):
        registry.add("montaigu", "Montaigu", tmp_path / "m", ["assistant.valbourg.fr"], [])
    with pytest.raises(CommuneError, match="déjà à la commune « valbourg »"):
        registry.add("montaigu", "Montaigu", tmp_path / "m", [], ["+33299001234"])
    with pytest.raises(CommuneError, match="Nom d'hôte invalide"):
        registry.add("montaigu", "Montaigu", tmp_path / "m", ["pas un hôte"], [])
    registry.add("montaigu", "Montaigu", tmp_path / "m", ["assistant.montaigu.fr"], [])
    registry.set_enabled("valbourg", False)
    with pytest.raises(CommuneError, match="Aucune commune"):
        registry.set_enabled("inconnue", False)
    seen_by_another_worker = CommuneRegistry(database_url)
    assert [(c.slug, c.hosts, c.numbers, c.enabled) for c in seen_by_another_worker.all()] == [
        ("montaigu", ("assistant.montaigu.fr",), (), True),
        ("valbourg", ("assistant.valbourg.fr",), ("+33299001234",), False),
    ]
    assert [c.slug for c in seen_by_another_worker.enabled()] == ["montaigu"]


def test_feedback_sets_and_runs_are_shared_by_every_worker(database_url, tmp_path):
    day = dt.date(2026, 12, 1)
    vote = (False, "wrong", None, ["marche.md"], "v", "le marché")
    voted = FeedbackStore(database_url, 30, today=lambda: day).add(*vote)
    another_worker = FeedbackStore(database_url, 30, today=lambda: day + dt.timedelta(days=31))
    assert another_worker.records(day) == [voted] and voted["question"] == "le marché"
    assert another_worker.purge() == 1 and another_worker.records(dt.date.min) == []

    sets = QuestionSets(database_url)
    sets.save("hebdo", '{"id": "q1", "question": "prix du passeport", "kind": "answer", "must_include": ["86 €"]}')

    def add(n: int) -> None:  # agents adding complaints at once: none lost, none twice
        case = Case(id=f"avis-{n}", question=f"question {n}", kind="answer", category="avis des habitants")
        QuestionSets(database_url).append("hebdo", case)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(c.id for c in sets.read("hebdo")) == ["avis-0", "avis-1", "avis-2", "avis-3", "avis-4", "avis-5",
                                                         "q1"]  # fmt: skip
    assert [(s["name"], s["cases"]) for s in QuestionSets(database_url).names()] == [("hebdo", 7)]

    alive = {"set": "hebdo", "by": "claire", "started": "", "finished": "", "state": "running", "done": 0}
    alive |= {"total": 1, "passed": 0, "process": process_token(os.getpid()), "corpus_hash": "h", "error": ""}
    ids = [f"20261201-10101{n}-abcd" for n in range(4)]
    claimed: list[str | None] = []

    def claim(run_id: str) -> None:  # workers starting a run at the same moment: one gets the slot
        claimed.append(RunRecords(database_url).claim(alive | {"id": run_id}))

    threads = [threading.Thread(target=claim, args=(run_id,)) for run_id in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    holder = RunRecords(database_url).running()
    assert holder in ids and claimed.count(None) == 1 and claimed.count(holder) == 3
    records = RunRecords(database_url)
    records.progress(holder, 1, 1, {"id": "q1", "passed": True}, {"route": "town"})
    records.finish(holder, state="finished", finished="2026-12-01T10:11:00+00:00", gate=[], summary={"n": 1})
    assert records.results(holder) == [{"id": "q1", "passed": True}]
    assert records.trace(holder, "q1") == {"route": "town"}
    assert records.status(holder)["state"] == "finished" and records.summary(holder) == {"n": 1}
    assert records.running() is None


def test_feedback_files_are_imported_with_the_retention(tmp_path):
    shutil.copytree(FEEDBACK_FILES, tmp_path / "feedback")
    store = FeedbackStore(sqlite_url(tmp_path / "state.db"), 365, today=lambda: dt.date(2026, 12, 8))
    assert store.import_files(tmp_path / "feedback") == 5
    kept = store.records(dt.date.min)
    assert [r["day"] for r in kept] == ["2026-11-02", "2026-11-24", "2026-12-01", "2026-12-01"]  # 2025-06 expired
    assert kept[1] == {"day": "2026-11-24", "useful": False, "reason": "wrong", "outcome": "answered",
                       "sources": ["marche.md"], "prompt_version": "answer-fr-v2",
                       "question": "horaires du marché le dimanche"}  # fmt: skip
    assert kept[2]["outcome"] is None and "question" not in kept[3]


def test_a_damaged_feedback_line_stops_the_import_and_loses_nothing(tmp_path):
    """The feedback files are deleted once imported: a line that cannot be read is named, never skipped."""
    staff, feedback = tmp_path / "staff", tmp_path / "feedback"
    shutil.copytree(FEEDBACK_FILES, feedback)
    damaged = sorted(feedback.glob("feedback-*.jsonl"))[-1]
    damaged.write_text(damaged.read_text(encoding="utf-8") + '{"useful": tru\n', encoding="utf-8")
    files = sorted(p.name for p in feedback.iterdir())
    settings = Settings(staff_dir=staff, feedback_dir=feedback)
    with pytest.raises(GuichetError, match=rf"{damaged}, ligne \d+ : avis illisible"):
        migrate(settings)
    assert sorted(p.name for p in feedback.iterdir()) == files
    assert FeedbackStore(sqlite_url(staff / "guichet.db"), 36500).records(dt.date.min) == []


def test_an_import_stopped_by_a_conflict_leaves_the_sets_and_names_the_file(tmp_path):
    staff, feedback = tmp_path / "staff", tmp_path / "feedback"
    shutil.copytree(FILES / "sets", staff / "sets")
    shutil.copytree(FEEDBACK_FILES, feedback)
    settings = Settings(staff_dir=staff, feedback_dir=feedback)
    QuestionSets(sqlite_url(staff / "guichet.db")).save("hebdo", (FILES / "sets" / "avis.jsonl").read_text())
    assert waiting(settings) == [str(staff / "sets"), f"{feedback / 'feedback'}-*.jsonl (3)"]
    with pytest.raises(SetError, match=rf"Un autre jeu « hebdo » .* {staff / 'sets' / 'hebdo.jsonl'}"):
        migrate(settings)
    assert [s["name"] for s in QuestionSets(sqlite_url(staff / "guichet.db")).names()] == ["hebdo"]
    assert waiting(settings) == [str(staff / "sets")]  # the feedback went in; the sets wait for the fix
    (staff / "sets" / "hebdo.jsonl").rename(staff / "sets" / "hebdo-avant.jsonl")
    assert migrate(settings).sets == 3 and waiting(settings) == []
    assert (staff / "sets.migrated" / "hebdo-avant.jsonl").exists()


def test_a_damaged_run_folder_is_named_and_no_run_is_imported(tmp_path):
    staff = tmp_path / "staff"
    shutil.copytree(FILES / "runs", staff / "runs")
    (staff / "runs" / SECOND_RUN / "status.json").write_text('{"id": "20261208-010855-65e3", "set"')
    with pytest.raises(GuichetError, match=rf"{SECOND_RUN} est illisible .* rien n'a été importé"):
        migrate(Settings(staff_dir=staff, feedback_dir=tmp_path / "feedback"))
    assert RunRecords(sqlite_url(staff / "guichet.db")).all() == [] and (staff / "runs").is_dir()
