"""The staff console with the fake model: accounts, login, sessions, CSRF, the audit log, trying a question."""

import base64
import json
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from bot.settings import REPO_ROOT, Settings
from bot.web.app import create_app
from bot.web.routes import staff as staff_routes
from bot.web.staff.accounts import AccountError, AccountStore
from bot.web.staff.auth import IDLE_SECONDS, MAX_SECONDS, StaffAuth
from tests.conftest import fake_answerer
from tests.unit.test_api import settled

PASSWORD = "correct horse battery"
PASSPORT = json.dumps({"source": "S1", "reponse": "Un passeport pour un majeur coûte 86 €."})


@pytest.fixture
def staff_dir(tmp_path):
    staff_routes._auth.cache_clear()
    return tmp_path / "staff"


@pytest.fixture
def client(fake_demo_index, tmp_path, staff_dir):
    AccountStore(staff_dir).add("claire", "admin", PASSWORD)
    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    with TestClient(create_app(lambda: answerer, Settings(staff_dir=staff_dir)), follow_redirects=False) as client:
        settled(client)
        yield client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]*)"', html).group(1)


def log_in(client, name="claire", password=PASSWORD):
    form = client.get("/staff/connexion")
    return client.post("/staff/connexion", data={"name": name, "password": password, "csrf": csrf_of(form.text)})


def test_accounts_hold_argon2_hashes_and_refuse_weak_or_odd_input(staff_dir):
    store = AccountStore(staff_dir)
    store.add("marc", "admin", PASSWORD)
    files = list(staff_dir.glob("guichet.db*"))  # the database and its write-ahead log
    saved = b"".join(f.read_bytes() for f in files)
    assert PASSWORD.encode() not in saved and b"$argon2id$" in saved
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {"0o600"}
    for name, role, password, complaint in [
        ("Marc Dupont", "admin", PASSWORD, "Nom de compte invalide"),
        ("julie", "boss", PASSWORD, "Rôle inconnu"),
        ("julie", "admin", "court", "trop court"),
        ("marc", "admin", PASSWORD, "existe déjà"),
    ]:
        with pytest.raises(AccountError, match=complaint):
            store.add(name, role, password)
    assert store.verify("marc", PASSWORD).role == "admin"
    assert store.verify("marc", "wrong password!") is None and store.verify("nobody", PASSWORD) is None


def test_the_console_is_off_until_a_first_account_exists(fake_demo_index, tmp_path, staff_dir):
    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    with TestClient(create_app(lambda: answerer, Settings(staff_dir=staff_dir))) as client:
        settled(client)
        assert client.get("/staff/connexion").status_code == 404
        assert client.get("/staff/").status_code == 404


def test_logging_in_sets_a_strict_cookie_and_opens_the_console(client):
    assert client.get("/staff/").headers["location"] == "/staff/connexion"
    response = log_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/staff/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/staff" in cookie
    assert "Secure" not in cookie  # plain HTTP in the test; behind HTTPS the cookie is Secure
    home = client.get("/staff/")
    assert home.status_code == 200 and "Essayer une question" in home.text and "claire" in home.text
    assert home.headers["cache-control"] == "no-store"


def test_a_wrong_name_or_password_gets_the_same_generic_message(client):
    wrong_password, unknown_name = log_in(client, password="not the password"), log_in(client, name="pierre")
    assert wrong_password.status_code == unknown_name.status_code == 401
    for response in (wrong_password, unknown_name):
        assert "Identifiant ou mot de passe incorrect." in response.text
    assert client.get("/staff/").status_code == 303


def test_login_attempts_are_limited_per_account(client):
    statuses = [log_in(client, password=f"guess number {n}").status_code for n in range(6)]
    assert statuses == [401] * 5 + [429]
    assert log_in(client).status_code == 429  # even the right password waits: no oracle for a guesser


def test_every_form_needs_its_csrf_token(client):
    form = client.get("/staff/connexion")
    assert client.post("/staff/connexion", data={"name": "claire", "password": PASSWORD}).status_code == 403
    assert log_in(client).status_code == 303
    assert (
        client.post("/staff/essayer", data={"question": "prix du passeport", "csrf": csrf_of(form.text)}).status_code
        == 403
    )


def test_trying_a_question_shows_each_step(client):
    log_in(client)
    csrf = csrf_of(client.get("/staff/").text)
    page = client.post("/staff/essayer", data={"question": "prix du passeport pour un majeur", "csrf": csrf})
    assert page.status_code == 200
    text = page.text
    assert "86 €" in text and "answered" in text
    for step in ("Contrôles d'entrée", "Aiguillage", "Passages trouvés", "Score sémantique", "Consigne envoyée"):
        assert step in text
    assert "Sortie brute du modèle" in text and "&#34;reponse&#34;" in text  # the raw JSON, escaped
    assert re.search(r"<textarea[^>]*>prix du passeport pour un majeur</textarea>", text)  # kept to try again


@pytest.mark.parametrize("question", ["", "   ", "x" * 601])
def test_an_empty_or_too_long_question_is_explained_and_kept(client, question):
    log_in(client)
    csrf = csrf_of(client.get("/staff/").text)
    page = client.post("/staff/essayer", data={"question": question, "csrf": csrf})
    assert page.status_code == 422 and "Écrivez une question de 1 à 600 caractères." in page.text


def test_trying_as_the_phone_shows_what_a_caller_hears(client):
    log_in(client)
    csrf = csrf_of(client.get("/staff/").text)
    page = client.post(
        "/staff/essayer", data={"question": "prix du passeport majeur", "channel": "voice", "csrf": csrf}
    )
    assert "Au téléphone :" in page.text and "86 euros" in page.text


def test_a_disabled_account_loses_its_open_session(client, staff_dir):
    AccountStore(staff_dir).add("marc", "admin", PASSWORD)
    log_in(client)
    assert client.get("/staff/").status_code == 200
    AccountStore(staff_dir).disable("claire", by="marc")
    assert client.get("/staff/").status_code == 303
    actions = [(e["who"], e["action"]) for e in AccountStore(staff_dir).audit_entries()]
    assert actions == [("cli", "compte créé")] * 2 + [("claire", "connexion"), ("marc", "compte désactivé")]
    AccountStore(staff_dir).disable("marc")
    assert client.get("/staff/connexion").status_code == 404  # no enabled account left: the console is off


def test_a_session_ends_after_eight_idle_hours_and_twelve_hours_in_all(staff_dir):
    store = AccountStore(staff_dir)
    account = store.add("lea", "reviewer", PASSWORD)
    now = [1_000_000.0]
    auth = StaffAuth(store, b"k" * 32, clock=lambda: now[0])
    cookie = auth.cookie(auth.open(account))
    now[0] += IDLE_SECONDS - 1
    assert auth.read(cookie).account.name == "lea"  # and its idle clock restarts
    assert auth.read(cookie[:-1] + ("0" if cookie[-1] != "0" else "1")) is None  # a forged signature
    now[0] += IDLE_SECONDS + 1
    assert auth.read(cookie) is None  # idle
    busy = auth.cookie(auth.open(account))
    for _ in range(MAX_SECONDS // 3600):
        assert auth.read(busy) is not None
        now[0] += 3600
    now[0] += 1
    assert auth.read(busy) is None  # a request every hour, but past the absolute lifetime


def test_logging_out_ends_the_session_everywhere_at_once(client, staff_dir):
    log_in(client)
    stolen = client.cookies.get("guichet_staff")  # the same cookie, copied to another browser or worker
    csrf = csrf_of(client.get("/staff/").text)
    assert client.post("/staff/deconnexion", data={"csrf": csrf}).status_code == 303
    client.cookies.set("guichet_staff", stolen, path="/staff")
    assert client.get("/staff/").status_code == 303  # a stateless cookie would still open the console here


def test_login_attempts_are_counted_for_every_worker(staff_dir):
    """Two workers (two StaffAuth over the same database) share the count: 5 attempts, not 5 each."""
    now = [5_000.0]
    workers = [StaffAuth(AccountStore(staff_dir), b"k" * 32, clock=lambda: now[0]) for _ in range(2)]
    waits = [workers[n % 2].login_wait("claire", f"10.0.0.{n}") for n in range(6)]
    assert waits[:5] == [0.0] * 5 and waits[5] > 0
    now[0] += 30  # two a minute after the burst
    assert workers[0].login_wait("claire", "10.0.0.9") == 0.0


def test_the_audit_log_is_chained_and_a_changed_row_is_found(staff_dir):
    import sqlite3

    store = AccountStore(staff_dir)
    store.add("marc", "admin", PASSWORD)
    store.audit("marc", "connexion")
    store.audit("marc", "réponse approuvée", "Combien coûte un passeport ?")
    assert store.verify_audit() == (3, None)
    with store.db.transaction() as db, pytest.raises(Exception, match="append-only"):
        db.exec_driver_sql("UPDATE audit SET who = 'paul' WHERE id = 2")  # the database refuses it
    raw = sqlite3.connect(staff_dir / "guichet.db")  # behind the service's back: triggers dropped, a row edited
    raw.executescript(
        "DROP TRIGGER audit_no_update; UPDATE audit SET detail = 'Combien coûte un permis ?' WHERE id = 3;"
    )
    raw.close()
    assert store.verify_audit() == (3, 3)


def test_the_staff_command_line_adds_lists_and_disables(tmp_path):
    env = {"GUICHET_STAFF_DIR": str(tmp_path), "GUICHET_FEEDBACK_DIR": str(tmp_path / "avis"), "PATH": "/usr/bin:/bin"}

    def guichet(*args, stdin=""):
        command = [sys.executable, "-m", "guichet.cli", "staff", *args]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=REPO_ROOT, env=env)

    (tmp_path / "accounts.json").write_text("{}", encoding="utf-8")  # a file-based deployment's, not imported yet
    waiting = guichet("add", "sophie", "--role", "admin", stdin=PASSWORD + "\n")
    assert waiting.returncode != 0 and "guichet staff migrate" in waiting.stderr + waiting.stdout
    (tmp_path / "accounts.json").unlink()  # the import needs a database without accounts: nothing was added
    assert guichet("add", "sophie", "--role", "admin", stdin=PASSWORD + "\n").returncode == 0
    short = guichet("add", "paul", stdin="court\n")
    assert short.returncode != 0 and "trop court" in short.stderr + short.stdout
    assert "sophie" in guichet("list").stdout and "admin" in guichet("list").stdout
    assert guichet("disable", "sophie").returncode == 0 and "non" in guichet("list").stdout


def approval_of(html: str) -> str:
    return re.search(r'name="approval" value="([^"]*)"', html).group(1)


def test_an_answer_tried_and_approved_is_served_as_is_until_revoked(client, staff_dir):
    log_in(client)
    csrf = csrf_of(client.get("/staff/").text)
    tried = client.post("/staff/essayer", data={"question": "prix du passeport pour un majeur", "csrf": csrf})
    approved = client.post("/staff/approuver", data={"approval": approval_of(tried.text), "csrf": csrf})
    assert approved.headers["location"].endswith("approuvee=1")
    listing = client.get("/staff/reponses-validees").text
    assert "Servie" in listing and "claire" in listing and "86 €" in listing

    again = client.post("/staff/essayer", data={"question": "Prix du passeport pour un majeur ?", "csrf": csrf})
    assert "Réponse validée par un agent" in again.text and 'name="approval"' not in again.text

    key, corpus_hash = re.search(
        r'name="key" value="([^"]*)".*?name="corpus_hash" value="([^"]*)"', listing, re.S
    ).groups()
    client.post("/staff/revoquer", data={"key": key, "corpus_hash": corpus_hash, "csrf": csrf})
    assert "Aucune réponse approuvée" in client.get("/staff/reponses-validees").text
    after = client.post("/staff/essayer", data={"question": "prix du passeport pour un majeur", "csrf": csrf})
    assert "Réponse validée par un agent" not in after.text
    actions = [e["action"] for e in AccountStore(staff_dir).audit_entries()]
    assert actions[-2:] == ["réponse approuvée", "réponse révoquée"]


def test_an_altered_approval_is_refused(client, staff_dir):
    log_in(client)
    csrf = csrf_of(client.get("/staff/").text)
    tried = client.post("/staff/essayer", data={"question": "prix du passeport pour un majeur", "csrf": csrf})
    payload, signature = approval_of(tried.text).rsplit(".", 1)
    forged = base64.urlsafe_b64encode(base64.urlsafe_b64decode(payload).replace(b"86", b"12")).decode()
    response = client.post("/staff/approuver", data={"approval": f"{forged}.{signature}", "csrf": csrf})
    assert response.headers["location"].endswith("erreur=formulaire")
    assert "Aucune réponse approuvée" in client.get("/staff/reponses-validees").text


def test_answers_approved_on_older_documents_are_flagged_not_served(client, tmp_path):
    from bot.answer.steps.validated_answer import ValidatedAnswerLookup

    answers = client.app.state.service.answerer.step(ValidatedAnswerLookup).answers
    citation = {"title": "T", "source": "s.md", "url": "", "date": "", "quote": "q"}
    answers.add("horaires de la mairie", "an-older-corpus", "Ouverte le lundi.", [citation], "marc")
    log_in(client)
    assert "les documents ont changé depuis" in client.get("/staff/reponses-validees").text


def test_the_documents_page_lists_what_the_index_holds(client):
    log_in(client)
    page = client.get("/staff/documents")
    assert page.status_code == 200
    assert "carte-identite-passeport.html" in page.text and "Contenu de l'index" in page.text


def test_old_or_undated_documents_are_flagged_and_problems_are_named_in_french(tmp_path):
    from datetime import date

    from bot.engines.embedder import FakeEmbedder
    from bot.engines.index import Index
    from ingestion.builder import build

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "recent.md").write_text("---\ntitle: Marché\ndate: 2026-11-01\n---\nLe marché a lieu le jeudi matin.\n")
    (corpus / "old.md").write_text("---\ntitle: Piscine\ndate: 2019-06-01\n---\nLa piscine ouvre en juin.\n")
    (corpus / "data.json").write_text("{}")
    build([corpus], tmp_path / "index", FakeEmbedder())
    overview = staff_routes.document_overview(Index.open(tmp_path / "index"), 365, today=date(2026, 12, 1))
    assert {d["source"]: d["stale"] for d in overview["documents"]} == {"old.md": True, "recent.md": False}
    assert overview["documents"][0]["source"] == "old.md"  # the ones to check first
    assert [(p["source"], p["label"]) for p in overview["problems"]] == [("data.json", "format non pris en charge")]


def test_feedback_is_counted_by_week_reason_outcome_and_document(tmp_path):
    from datetime import date

    from bot.state.database import sqlite_url
    from bot.web.feedback import FeedbackStore

    days = iter([date(2026, 11, 2), date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 30)])
    store = FeedbackStore(sqlite_url(tmp_path / "state.db"), 365, today=lambda: next(days))
    store.add(True, "clear", "answered", ["etat-civil.md"], "v2")
    store.add(False, "wrong", "answered", ["marche.md"], "v2")
    store.add(False, "incomplete", None, ["marche.md", "cimetiere.md"], "v2")
    store.add(True, None, "answered", [], "v2")
    overview = staff_routes.feedback_overview(store.records(date(2026, 9, 1)), today=date(2026, 12, 1))
    assert overview["total"] == 4 and overview["useful"] == 2
    assert len(overview["weeks"]) == 12 and overview["weeks"][-1]["label"] == "30/11"  # Monday of this week
    weeks = {w["label"]: (w["useful"], w["not_useful"]) for w in overview["weeks"]}
    assert weeks["02/11"] == (1, 0) and weeks["23/11"] == (0, 2) and weeks["30/11"] == (1, 0)
    assert overview["by_document"][0] == ("marche.md", 2)
    assert dict(overview["by_reason"]) == {"Réponse claire": 1, "Fausse ou dépassée": 1, "Incomplète": 1}
    assert dict(overview["by_outcome"]) == {"answered": 3, "session expirée": 1}
    assert [r["reason"] for r in overview["flagged"]] == ["incomplete", "wrong"]  # most recent first
    assert "question" not in json.dumps(overview["flagged"])  # nothing about what a resident asked


def test_the_feedback_page_shows_a_chart_with_its_table(client):
    log_in(client)
    page = client.get("/staff/avis")
    assert page.status_code == 200 and '<svg role="img"' in page.text and "Avis par semaine" in page.text
