"""The service's state in a database: SQLite by default, a real PostgreSQL server the test starts itself; and the
one command that moves a file-based deployment's staff accounts and audit log in."""

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.settings import REPO_ROOT, Settings
from bot.state.database import Database, sqlite_url
from bot.web.app import create_app
from bot.web.routes import staff as staff_routes
from bot.web.staff.accounts import AccountError, AccountStore
from bot.web.staff.auth import StaffAuth
from tests.conftest import fake_answerer
from tests.postgres import running_postgres
from tests.unit.test_api import settled
from tests.unit.test_staff import PASSPORT, PASSWORD, csrf_of, log_in

FILES = Path(__file__).parents[1] / "fixtures" / "staff-files"  # written by AccountStore before the database


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
        db.exec_driver_sql("TRUNCATE audit, login_throttle, staff_sessions, accounts, communes")
        db.exec_driver_sql("ALTER TABLE audit ENABLE TRIGGER audit_append_only")
    return url


def test_accounts_sessions_and_throttling_live_in_the_database(database_url, tmp_path):
    store = AccountStore(tmp_path, database_url)
    assert store.db.revision() == Database.head() == "0002"  # the migrations ran when the database was opened
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


def test_a_file_based_deployment_moves_into_the_database_with_one_command(tmp_path):
    staff = tmp_path / "staff"
    shutil.copytree(FILES, staff)
    env = {"GUICHET_STAFF_DIR": str(staff), "PATH": "/usr/bin:/bin"}

    def guichet(*args):
        command = [sys.executable, "-m", "guichet.cli", *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120)

    refused = guichet("serve", "--port", "1")
    assert refused.returncode == 2 and "guichet staff migrate" in refused.stderr + refused.stdout
    migrated = guichet("staff", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "3 compte(s) et 7 ligne(s)" in migrated.stdout
    assert sorted(p.name for p in staff.iterdir() if "migrated" in p.name) == ["accounts.json.migrated",
                                                                               "audit.jsonl.migrated"]  # fmt: skip
    store = AccountStore(staff)
    assert store.verify("claire", "mot-de-passe-de-claire").role == "admin"  # the same argon2 hashes
    assert store.verify("ancien", "mot-de-passe-ancien") is None  # still disabled
    entries = store.audit_entries()
    assert entries[0] == {"at": "2026-12-07T17:57:10+00:00", "who": "cli", "action": "compte créé",
                          "detail": "claire (admin)"}  # fmt: skip
    assert [e["action"] for e in entries[-2:]] == ["connexion refusée", "import des fichiers"]
    assert guichet("staff", "audit", "--verify").returncode == 0
    again = guichet("staff", "migrate")
    assert again.returncode == 2 and "Rien à importer" in again.stderr + again.stdout
    import sqlite3

    raw = sqlite3.connect(staff / "guichet.db")
    raw.executescript("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id = 4;")
    raw.close()
    broken = guichet("staff", "audit", "--verify")
    assert broken.returncode == 2 and "Journal altéré : la ligne 5" in broken.stderr + broken.stdout


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
