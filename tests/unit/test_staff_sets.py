"""The staff console's question sets and runs with the fake model: upload, line-by-line errors, a background run
with its progress, gate verdict, filters and traces, one run at a time (across workers and machines), residents
first, roles, comparing runs, and a resident's complaint turned into a test case."""

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from bot.settings import Settings
from bot.state.database import state_url
from bot.state.tables import run_results, runs
from bot.web.app import create_app
from bot.web.feedback import FeedbackStore
from bot.web.routes import staff as staff_routes
from bot.web.routes import staff_sets
from bot.web.staff import run_records
from bot.web.staff import runs as runs_module
from bot.web.staff.accounts import AccountStore
from bot.web.staff.jobs import process_token
from bot.web.staff.question_sets import QuestionSets, SetError
from bot.web.staff.run_records import RunRecords
from bot.web.staff.runs import RunBusy, Runs
from tests.conftest import fake_answerer
from tests.unit.test_api import settled
from tests.unit.test_staff import PASSPORT, PASSWORD, csrf_of, log_in

SET = "\n".join(
    json.dumps(case, ensure_ascii=False)
    for case in [
        {"id": "q1", "question": "prix du passeport pour un majeur", "kind": "answer", "must_include": ["86 €"]},
        {"id": "q2", "question": "prix du passeport", "kind": "answer", "category": "papiers", "must_include": ["9 €"]},
        {"id": "q3", "question": "Mon voisin est-il fiché ?", "kind": "refuse", "outcome": "refused_personal_data"},
    ]
)


@pytest.fixture
def staff_dir(tmp_path):
    staff_routes._auth.cache_clear()
    staff_sets._runs.cache_clear()
    return tmp_path / "staff"


def state(staff_dir) -> str:
    """The database of the console's sets and runs: the SQLite file of its staff folder."""
    return state_url("", staff_dir)


@pytest.fixture
def client(fake_demo_index, tmp_path, staff_dir):
    AccountStore(staff_dir).add("claire", "admin", PASSWORD)
    AccountStore(staff_dir).add("paul", "reviewer", PASSWORD)
    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    settings = Settings(staff_dir=staff_dir, feedback_dir=tmp_path / "feedback")
    with TestClient(create_app(lambda: answerer, settings), follow_redirects=False) as client:
        settled(client)
        yield client


def upload(client, name: str, content: str, filename: str = "jeu.jsonl"):
    csrf = csrf_of(client.get("/staff/jeux").text)
    files = {"upload": (filename, content.encode(), "application/octet-stream")}
    return client.post("/staff/jeux", data={"name": name, "csrf": csrf}, files=files)


def finished(client, run_id: str) -> dict:
    for _ in range(200):
        state = client.get(f"/staff/essais/{run_id}/etat").json()
        if state["state"] != "running":
            return state
        time.sleep(0.05)
    raise AssertionError("the run did not finish in 10 s")


def run_set(client, name: str) -> str:
    csrf = csrf_of(client.get("/staff/jeux").text)
    started = client.post(f"/staff/jeux/{name}/lancer", data={"csrf": csrf})
    assert started.status_code == 303, started.text
    run_id = started.headers["location"].rsplit("/", 1)[1]
    assert finished(client, run_id)["state"] == "finished"
    return run_id


def test_a_bad_set_is_refused_line_by_line_and_the_saved_one_is_kept(client, staff_dir):
    log_in(client)
    assert upload(client, "hebdo", SET).status_code == 303
    bad = SET + '\n{"id": "q4", "question": "x"}\n{not json\n{"id": "q1", "question": "y", "kind": "answer"}'
    refused = upload(client, "hebdo", bad)
    assert refused.status_code == 422
    assert "ligne 4 : champ(s) manquant(s) : kind" in refused.text
    assert "ligne 5 : ligne JSON invalide" in refused.text
    assert "identifiant(s) en double : q1" in refused.text
    assert str(staff_dir) not in refused.text  # staff never see the server's paths
    assert [c.id for c in QuestionSets(state(staff_dir)).read("hebdo")] == ["q1", "q2", "q3"]
    assert upload(client, "../etc", SET).status_code == 422
    csv_set = 'id,question,kind,must_include\nc1,prix du passeport,answer,"[""86 €""]"\n'
    assert upload(client, "en-csv", csv_set, "jeu.csv").status_code == 303
    assert QuestionSets(state(staff_dir)).read("en-csv")[0].must_include == ["86 €"]
    actions = [e["action"] for e in AccountStore(staff_dir).audit_entries()]
    assert actions.count("jeu de questions enregistré") == 2


def test_a_run_goes_in_the_background_and_each_case_opens_with_its_trace(client, staff_dir):
    log_in(client)
    upload(client, "hebdo", SET)
    run_id = run_set(client, "hebdo")
    page = client.get(f"/staff/essais/{run_id}").text
    assert "Verdict de mise en service" in page and "Réponses justes" in page
    assert "3 questions sur 3" in page
    failures = client.get(f"/staff/essais/{run_id}", params={"etat": "echecs"}).text
    assert "2 questions sur 3" in failures and "prix du passeport</a>" in failures
    assert "1 question sur 3" in client.get(f"/staff/essais/{run_id}", params={"categorie": "papiers"}).text
    case = client.get(f"/staff/essais/{run_id}/cas/q2").text
    assert "Échec" in case and "manque 9 €" in case
    assert "Comment la réponse a été faite" in case and "Consigne envoyée au modèle" in case
    passed = client.get(f"/staff/essais/{run_id}/cas/q1").text
    assert 'name="approval"' in passed  # an admin may approve a passing answer from the run
    assert client.get(f"/staff/essais/{run_id}/cas/nope").status_code == 404
    assert client.get("/staff/essais/../../etc/cas/q1").status_code == 404
    actions = [e["action"] for e in AccountStore(staff_dir).audit_entries()]
    assert "série lancée" in actions


def test_a_run_does_not_serve_validated_answers(client, staff_dir):
    log_in(client)
    csrf = csrf_of(client.get("/staff/").text)
    tried = client.post("/staff/essayer", data={"question": "prix du passeport pour un majeur", "csrf": csrf})
    approval = tried.text.split('name="approval" value="')[1].split('"')[0]
    client.post("/staff/approuver", data={"approval": approval, "csrf": csrf})
    upload(client, "hebdo", SET)
    run_id = run_set(client, "hebdo")
    results = Runs(state(staff_dir), Settings().gate_file).results(run_id)
    assert not any(r["served_validated"] for r in results)


def test_two_runs_at_once_are_refused_politely(tmp_path, fake_demo_index):
    runs = Runs(state(tmp_path / "staff"), Settings().gate_file)
    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    sets = QuestionSets(state(tmp_path / "staff"))
    sets.save("hebdo", SET)
    cases = sets.read("hebdo")
    release = threading.Event()

    class Held:
        def __enter__(self):
            return self

        def __exit__(self, *_):
            return None

    def enter(stop):
        release.wait(10)
        return Held()

    first = runs.start(answerer, "hebdo", cases, "claire", enter)
    with pytest.raises(RunBusy) as busy:
        runs.start(answerer, "hebdo", cases, "paul", enter)
    assert busy.value.run_id == first
    release.set()
    for _ in range(200):
        if runs.status(first)["state"] != "running":
            break
        time.sleep(0.05)
    assert runs.status(first)["state"] == "finished" and runs.active() is None
    second = runs.start(answerer, "hebdo", cases, "paul", enter)
    assert second != first


def test_a_run_whose_server_stopped_is_shown_interrupted_and_frees_the_slot(tmp_path):
    runs = Runs(state(tmp_path / "staff"), Settings().gate_file)
    dead = {"id": "20261201-101010-abcd", "set": "hebdo", "by": "claire", "started": "2026-12-01T10:10:10+00:00"}
    dead |= {"finished": "", "state": "running", "done": 2, "total": 9, "passed": 1, "error": "", "corpus_hash": "h"}
    dead["process"] = f"{1}:{0}"  # pid 1 exists, but it did not start at that time
    assert runs.records.claim(dead) is None
    assert runs.status(dead["id"])["state_fr"].startswith("interrompu")
    assert runs.active() is None
    assert process_token(99_999_999) == ""


def test_a_run_on_another_machine_holds_the_slot_while_its_worker_is_heard_of(tmp_path, fake_demo_index):
    url = state(tmp_path / "staff")
    elsewhere = {"id": "20261201-101010-abcd", "set": "hebdo", "by": "claire", "started": "2026-12-01T10:10:10+00:00"}
    elsewhere |= {"finished": "", "state": "running", "done": 0, "total": 3, "passed": 0, "error": ""}
    elsewhere |= {"corpus_hash": "h", "process": "4242:1"}  # a process of the other machine
    records = RunRecords(url)
    assert records.claim(elsewhere) is None
    with records.db.transaction() as db:
        db.execute(update(runs).where(runs.c.id == elsewhere["id"]).values(machine="autre-serveur"))
    here = Runs(url, Settings().gate_file)
    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)
    with pytest.raises(RunBusy) as busy:
        here.start(answerer, "hebdo", [], "paul", lambda stop: None)
    assert busy.value.run_id == elsewhere["id"] and here.status(elsewhere["id"])["state"] == "running"
    assert here.stop(elsewhere["id"])  # asked through the database: its worker reads it at its next beat
    assert records.beat(elsewhere["id"]) is True
    silent = time.time() - run_records.SILENT_SECONDS - 1
    with records.db.transaction() as db:  # its machine stopped: no sign of life since
        db.execute(update(runs).where(runs.c.id == elsewhere["id"]).values(seen=silent))
    assert here.status(elsewhere["id"])["state"] == "interrupted" and here.active() is None


def test_a_run_stops_when_asked_through_another_worker(tmp_path, fake_demo_index, monkeypatch):
    monkeypatch.setattr(runs_module, "BEAT_SECONDS", 0.05)
    url = state(tmp_path / "staff")
    sets = QuestionSets(url)
    sets.save("hebdo", SET)
    running_it, another = Runs(url, Settings().gate_file), Runs(url, Settings().gate_file)
    answerer = fake_answerer(fake_demo_index, PASSPORT, tmp_path)

    def enter(stop):  # waits, as while residents are answered, until the run is stopped
        stop.wait(10)

    run_id = running_it.start(answerer, "hebdo", sets.read("hebdo"), "claire", enter)
    assert another.status(run_id)["state"] == "running" and another.active() == run_id
    assert another.stop(run_id)
    for _ in range(100):
        if another.status(run_id)["state"] != "running":
            break
        time.sleep(0.05)
    assert another.status(run_id)["state_fr"] == "arrêté" and another.active() is None
    assert not another.stop(run_id)  # nothing left to stop


def test_a_run_waits_while_residents_are_answered(client):
    service = client.app.state.service
    stop = threading.Event()
    assert service.gate.try_enter()  # a resident's turn in progress
    got = []
    waiter = threading.Thread(target=lambda: got.append(service.admit_when_idle(stop)))
    waiter.start()
    time.sleep(0.5)
    assert got == []  # still waiting
    service.gate.leave()
    waiter.join(5)
    assert got and got[0] is not None
    got[0].release()
    stop.set()
    assert service.admit_when_idle(stop) is None  # a stopped run stops waiting


def test_a_reviewer_runs_sets_but_cannot_approve_or_revoke(client, staff_dir):
    log_in(client, "paul")
    upload(client, "hebdo", SET)
    run_id = run_set(client, "hebdo")
    assert 'name="approval"' not in client.get(f"/staff/essais/{run_id}/cas/q1").text
    csrf = csrf_of(client.get("/staff/").text)
    tried = client.post("/staff/essayer", data={"question": "prix du passeport pour un majeur", "csrf": csrf})
    assert 'name="approval"' not in tried.text
    admin_only = [("/staff/approuver", {"approval": "x.y"}), ("/staff/revoquer", {"key": "k", "corpus_hash": "h"})]
    for path, data in admin_only:
        refused = client.post(path, data=data | {"csrf": csrf})
        assert refused.status_code == 403 and "réservée aux administrateurs" in refused.text


def test_every_console_page_refuses_an_anonymous_client(client):
    for route in client.app.routes:
        path = getattr(route, "path", "")
        if not path.startswith("/staff") or path in ("/staff/connexion", "/staff/console.css", "/staff/console.js"):
            continue
        concrete = path.replace("{name}", "hebdo").replace("{run_id}", "20261201-101010-abcd")
        concrete = concrete.replace("{case_id}", "q1")
        for method in route.methods:
            response = client.request(method, concrete)
            assert response.status_code == 303 and response.headers["location"] == "/staff/connexion", (method, path)


def test_two_runs_compare_by_regressions_and_fixes(client, staff_dir):
    log_in(client)
    upload(client, "hebdo", SET)
    first = run_set(client, "hebdo")
    records = RunRecords(state(staff_dir))
    rows = records.results(first)
    rows[0]["passed"], rows[1]["passed"] = False, True  # as if q1 was fixed and q2 broke between the runs
    with records.db.transaction() as db:
        for position, row in enumerate(rows[:2], 1):
            changed = update(run_results).where(run_results.c.run_id == first, run_results.c.position == position)
            db.execute(changed.values(result=json.dumps(row)))
    second = run_set(client, "hebdo")
    page = client.get("/staff/comparer", params={"avant": first, "apres": second}).text
    assert "Régressions (1)" in page and "Corrections (1)" in page
    assert client.get("/staff/comparer", params={"avant": first, "apres": "nope"}).status_code == 422


def test_a_complaint_becomes_a_test_case_without_resident_text_in_the_audit(client, staff_dir):
    store = FeedbackStore(state(staff_dir), 365)
    store.add(False, "wrong", "answered", ["etat-civil.md"], "v", question="horaires de l'état civil le samedi")
    store.add(False, "not_clear", "answered", [], "v", question="ceci n'est pas gardé")
    assert "question" not in store.records(store.today())[1]
    log_in(client)
    page = client.get("/staff/avis").text
    assert "horaires de l&#39;état civil le samedi" in page and "ceci n'est pas gardé" not in page
    csrf = csrf_of(page)
    form = {"question": "horaires de l'état civil le samedi", "expected": "9 h; samedi", "set_name": "avis"}
    form["csrf"] = csrf
    added = client.post("/staff/avis/ajouter", data=form)
    assert added.headers["location"] == "/staff/avis?ajoutee=avis"
    [case] = QuestionSets(state(staff_dir)).read("avis")
    assert case.must_include == ["9 h", "samedi"] and case.kind == "answer"
    client.post("/staff/avis/ajouter", data=form)
    assert [c.id for c in QuestionSets(state(staff_dir)).read("avis")] == ["avis-001", "avis-002"]
    audit = json.dumps(AccountStore(staff_dir).audit_entries(), ensure_ascii=False)
    assert "question ajoutée à un jeu" in audit and "samedi" not in audit
    assert client.post("/staff/avis/ajouter", data=form | {"expected": " "}).status_code == 422


def test_a_set_name_is_never_a_path(tmp_path):
    with pytest.raises(SetError, match="Nom de jeu invalide"):
        QuestionSets(state(tmp_path)).save("../../x", SET)


def test_every_new_form_without_its_csrf_token_changes_nothing(client, staff_dir):
    log_in(client)
    upload(client, "hebdo", SET)
    before = AccountStore(staff_dir).audit_entries()
    files = {"upload": ("jeu.jsonl", SET.encode(), "application/octet-stream")}
    assert client.post("/staff/jeux", data={"name": "autre"}, files=files).status_code == 403
    assert client.post("/staff/jeux/hebdo/lancer", data={"csrf": "x"}).status_code == 403
    assert client.post("/staff/documents/reindexer", data={}).status_code == 403
    client.post("/staff/avis/ajouter", data={"question": "q", "expected": "x", "set_name": "hebdo"})
    client.post("/staff/essais/20261201-101010-abcd/arreter", data={})
    assert [s["name"] for s in QuestionSets(state(staff_dir)).names()] == ["hebdo"]
    assert len(QuestionSets(state(staff_dir)).read("hebdo")) == 3
    assert Runs(state(staff_dir), Settings().gate_file).list() == []
    assert AccountStore(staff_dir).audit_entries() == before


def test_questions_no_document_answers_are_grouped_by_meaning_for_staff(client, staff_dir, tmp_path):
    asked = [
        "horaires de la piscine municipale",
        "horaires de la piscine municipale le dimanche",
        "Bonjour, quels horaires pour la piscine municipale ?",
        "prix du passeport pour un majeur",  # answered: not a gap
    ]
    for question in asked:
        client.post("/api/v1/turn", json={"text": question})
    FeedbackStore(state(staff_dir), 365).add(False, "wrong", "answered", ["etat-civil.md"], "v", "mariage le lundi")
    [*_, last] = (tmp_path / "feedback").glob("lacunes-*.jsonl")
    kept = [json.loads(line) for line in last.read_text().splitlines()]
    assert [r["question"] for r in kept] == asked[:3] and {"day", "channel", "documents"} <= set(kept[0])
    assert "session_id" not in kept[0] and all(r["outcome"] == "unanswerable_no_sources" for r in kept)
    log_in(client)
    page = client.get("/staff/lacunes").text
    assert "4 questions" in page and "piscine" in page and "mariage le lundi" in page
    assert page.index("piscine") < page.index("mariage le lundi")  # the group of three first
    form = {
        "question": "horaires de la piscine",
        "expected": "piscine",
        "set_name": "lacunes",
        "back": "/staff/lacunes",
    }
    added = client.post("/staff/avis/ajouter", data=form | {"csrf": csrf_of(page)})
    assert added.headers["location"] == "/staff/lacunes?ajoutee=lacunes"
    elsewhere = client.post(
        "/staff/avis/ajouter", data=form | {"csrf": csrf_of(page), "back": "https://ailleurs.example"}
    )
    assert elsewhere.headers["location"] == "/staff/avis?ajoutee=lacunes"
