"""The staff console in headless Chromium against the real server and models: log in with the keyboard, try a
question, read how it was answered, approve the answer and revoke it; run a question set and open a failed case;
update the index. Screenshots go to
``var/test-output/staff/``."""

from __future__ import annotations

import json

import pytest

from bot.settings import REPO_ROOT
from bot.state.database import state_url
from bot.web.feedback import FeedbackStore
from bot.web.staff.accounts import AccountStore
from tests.e2e.conftest import running_server
from tests.e2e.test_widget_browser import CHROMIUM, CHROMIUM_ARGS, axe_violations

pytestmark = pytest.mark.e2e
SHOTS = REPO_ROOT / "var" / "test-output" / "staff"
PASSWORD = "une phrase de passe assez longue"


@pytest.fixture(scope="module")
def server(real_demo_index, tmp_path_factory):
    staff_dir, feedback_dir = tmp_path_factory.mktemp("staff"), tmp_path_factory.mktemp("feedback")
    AccountStore(staff_dir).add("accueil", "admin", PASSWORD)
    votes = FeedbackStore(state_url("", staff_dir), 365)  # the console's database: the staff folder's
    votes.add(False, "wrong", "answered", ["marche.md"], "answer-fr-v2")
    votes.add(True, "clear", "answered", ["etat-civil.md"], "answer-fr-v2")
    env = {"GUICHET_STAFF_DIR": str(staff_dir), "GUICHET_FEEDBACK_DIR": str(feedback_dir)}
    with running_server(real_demo_index, env) as (base, _):
        yield base, staff_dir


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


def test_an_agent_logs_in_and_tries_a_question_with_the_keyboard(server, page):
    base, staff_dir = server
    page.goto(f"{base}/staff/")
    assert page.url.endswith("/staff/connexion")
    assert axe_violations(page) == []
    page.keyboard.type("accueil")  # the name field has the focus on arrival
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/staff/")
    page.get_by_label("Question").focus()
    page.keyboard.type("Combien coûte un passeport pour un adulte ?")
    page.get_by_role("button", name="Essayer").press("Enter")
    page.wait_for_selector("#etapes", timeout=180_000)
    page.screenshot(path=SHOTS / "trace.png", full_page=True)
    answer = page.locator(".answer").inner_text()
    assert "86" in answer
    assert page.locator("table tbody tr").count() >= 1  # the passages with their scores
    page.get_by_text("Consigne envoyée au modèle").click()
    assert "S1" in page.locator("details pre").first.inner_text()
    assert axe_violations(page) == []

    page.get_by_role("button", name="Approuver cette réponse").press("Enter")
    page.wait_for_url(f"{base}/staff/reponses-validees?approuvee=1")
    page.screenshot(path=SHOTS / "validated.png", full_page=True)
    assert "Servie" in page.locator("tbody").inner_text() and axe_violations(page) == []
    page.get_by_role("button", name="Révoquer").first.press("Enter")
    page.wait_for_url(f"{base}/staff/reponses-validees?revoquee=1")
    assert "Aucune réponse approuvée" in page.content()
    actions = [e["action"] for e in AccountStore(staff_dir).audit_entries()]
    assert actions[-3:] == ["connexion", "réponse approuvée", "réponse révoquée"]

    page.get_by_role("link", name="Documents").click()
    page.wait_for_url(f"{base}/staff/documents")
    page.screenshot(path=SHOTS / "documents.png", full_page=True)
    assert "carte-identite-passeport.html" in page.content() and axe_violations(page) == []

    page.get_by_role("link", name="Avis des habitants").click()
    page.wait_for_url(f"{base}/staff/avis")
    page.screenshot(path=SHOTS / "feedback.png", full_page=True)
    assert "marche.md" in page.content() and axe_violations(page) == []


# A small set: two questions the demo town answers, and one whose expectation is wrong on purpose, so the run
# has a failed case to open.
SMALL_SET = "\n".join(
    json.dumps(case, ensure_ascii=False)
    for case in [
        {
            "id": "passeport",
            "question": "Combien coûte un passeport pour un adulte ?",
            "kind": "answer",
            "category": "papiers",
            "must_include": ["86 €"],
        },
        {
            "id": "meteo",
            "question": "Quel temps fera-t-il demain ?",
            "kind": "refuse",
            "category": "hors sujet",
            "outcome": ["refused_out_of_scope", "unanswerable_no_sources"],
        },
        {
            "id": "attente-fausse",
            "question": "Combien coûte un passeport pour un adulte ?",
            "kind": "answer",
            "category": "papiers",
            "must_include": ["999 €"],
        },
    ]
)


def test_an_agent_runs_a_set_and_opens_a_failed_case_then_updates_the_index(server, page, tmp_path):
    base, staff_dir = server
    page.goto(f"{base}/staff/jeux")
    set_file = tmp_path / "hebdo.jsonl"
    set_file.write_text(SMALL_SET, encoding="utf-8")
    page.get_by_label("Nom du jeu").fill("hebdo")
    page.get_by_label("Fichier JSONL ou CSV").set_input_files(str(set_file))
    page.get_by_role("button", name="Enregistrer le jeu").click()
    page.wait_for_url(f"{base}/staff/jeux?enregistre=hebdo")
    assert axe_violations(page) == []
    page.get_by_role("link", name="hebdo").click()  # the set's own page, to read or edit it
    page.wait_for_url(f"{base}/staff/jeux/hebdo")
    assert '"id": "passeport"' in page.get_by_label("Questions, une par ligne (JSON Lines)").input_value()
    assert axe_violations(page) == []
    page.go_back()
    page.get_by_role("button", name="Lancer le jeu hebdo").click()
    page.wait_for_url(f"{base}/staff/essais/*")
    page.screenshot(path=SHOTS / "run-progress.png", full_page=True)
    page.wait_for_selector("text=Verdict de mise en service", timeout=300_000)  # the script reloads the page
    page.screenshot(path=SHOTS / "run.png", full_page=True)
    assert axe_violations(page) == []
    page.get_by_label("Résultat").select_option("echecs")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_selector("text=1 question sur 3")
    page.get_by_role("link", name="Combien coûte un passeport pour un adulte ?").click()
    page.wait_for_selector("#etapes")
    page.screenshot(path=SHOTS / "case.png", full_page=True)
    assert "manque 999 €" in page.content() and "86" in page.locator(".answer").inner_text()
    assert axe_violations(page) == []

    page.goto(f"{base}/staff/documents")
    generation = page.locator("code").first.inner_text()
    page.get_by_role("button", name="Mettre à jour l'index maintenant").click()
    page.wait_for_url(f"{base}/staff/documents")
    page.wait_for_selector("text=terminée", timeout=300_000)  # the script reloads the page when it ends
    page.screenshot(path=SHOTS / "reindexed.png", full_page=True)
    for _ in range(20):  # the worker moves to the new generation within a few seconds
        page.reload()
        if page.locator("code").first.inner_text() != generation:
            break
        page.wait_for_timeout(1000)
    assert page.locator("code").first.inner_text() != generation
    actions = [e["action"] for e in AccountStore(staff_dir).audit_entries()]
    assert {"jeu de questions enregistré", "série lancée", "mise à jour de l'index lancée"} <= set(actions)


def test_questions_no_document_answers_reach_the_gaps_page_grouped(server, page):
    import httpx

    base, _ = server
    for question in ("La piscine municipale ouvre à quelle heure ?", "Quels jours la piscine de la ville est ouverte"):
        reply = httpx.post(f"{base}/api/v1/turn", json={"text": question}, timeout=180).json()
        assert reply["outcome"] in ("unanswerable_no_sources", "answered_from_quote"), reply
    page.goto(f"{base}/staff/lacunes")
    page.screenshot(path=SHOTS / "gaps.png", full_page=True)
    assert page.locator("tbody tr").first.locator("td").first.inner_text() == "2"  # one group for both wordings
    assert axe_violations(page) == []


def test_the_console_reflows_at_200_percent_zoom(server, page):
    base, _ = server
    page.set_viewport_size({"width": 640, "height": 900})  # 1280 px at 200 %
    page.goto(f"{base}/staff/")
    page.screenshot(path=SHOTS / "zoom-200.png", full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
    assert not overflow and axe_violations(page) == []


def test_an_agent_logs_out(server, page):
    base, staff_dir = server
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/staff/")
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url(f"{base}/staff/connexion")
    page.goto(f"{base}/staff/jeux")
    assert page.url.endswith("/staff/connexion")  # the session has ended
    assert AccountStore(staff_dir).audit_entries()[-1]["action"] == "déconnexion"
