"""The chat widget in headless Chromium against the real server and models: a resident's visit, keyboard only.

Screenshots go to ``var/test-output/widget/``: look at them after a change to the widget.
"""

from __future__ import annotations

import json
import shutil
from datetime import date

import httpx
import pytest

from bot.answer.outcomes import ANSWERS
from bot.settings import REPO_ROOT
from bot.state.database import state_url
from bot.web.feedback import FeedbackStore
from tests.e2e.conftest import running_server

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO_ROOT / "var" / "test-output" / "widget"
# Without the background-networking flags Chromium keeps calling Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


GAP_FIELDS = {"day", "channel", "outcome", "question", "documents"}  # nothing that points back to a resident


@pytest.fixture(scope="module")
def server(real_demo_index, tmp_path_factory):
    state = tmp_path_factory.mktemp("state")  # the feedback in its staff database, the gaps in its feedback folder
    env = {"GUICHET_FEEDBACK_DIR": str(state / "feedback"), "GUICHET_STAFF_DIR": str(state / "staff")}
    with running_server(real_demo_index, env) as (base, _):
        yield base, state


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def axe_violations(page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page (the widget's open shadow root included)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa"]}})
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in results.response["violations"]]


def focused(page) -> str:
    """A short description of the element that has the keyboard focus, looking into the widget's shadow root."""
    return page.evaluate(
        """() => {
            let el = document.activeElement;
            while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
            return el ? `${el.tagName.toLowerCase()}:${(el.textContent || el.id || '').trim().slice(0, 40)}` : '';
        }"""
    )


def tab_to(page, target: str, limit: int = 25) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target in focused(page):
            return
    raise AssertionError(f"could not reach {target!r} with Tab; focus is on {focused(page)!r}")


WATCH_DRAFTS = """() => {
    window.__drafts = [];
    const root = document.getElementById('guichet-widget').shadowRoot;
    new MutationObserver(() => {
        const draft = root.querySelector('.draft .text');
        if (draft && draft.textContent) window.__drafts.push(draft.textContent);
    }).observe(root, {subtree: true, childList: true, characterData: true});
}"""


def ask(page, text: str):
    """Type a question with the keyboard, wait for the checked answer; returns it and the drafts seen meanwhile."""
    log = page.get_by_role("log")
    before = log.locator(".message.bot:not(.draft)").count()
    page.evaluate("() => { window.__drafts = []; }")
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    answer = log.locator(".message.bot:not(.draft)").nth(before)
    answer.wait_for(timeout=120_000)
    assert log.locator(".draft").count() == 0  # the checked answer replaced the draft
    return answer, page.evaluate("() => window.__drafts")


def test_a_resident_asks_with_the_keyboard_only_and_sees_sources(server, browser):
    base, state = server
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{base}/demo")
    launcher = page.get_by_role("button", name="Une question ? Assistant de la mairie de Valbourg (IA)")
    launcher.wait_for()
    assert axe_violations(page) == []

    tab_to(page, "Une question ?")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Assistant de la mairie de Valbourg")
    dialog.wait_for()
    assert focused(page).startswith("textarea")
    assert "assistant automatique (intelligence artificielle)" in dialog.inner_text()
    assert dialog.get_by_role("link", name="Comment il fonctionne").get_attribute("href").endswith("/a-propos")
    assert axe_violations(page) == []

    page.evaluate(WATCH_DRAFTS)
    answer, drafts = ask(page, "Combien coûte un passeport pour un adulte ?")
    assert "86" in answer.locator(".text").inner_text()
    source = answer.get_by_role("link").first
    assert source.inner_text().startswith("Carte d'identité") and "mis à jour le" in answer.inner_text()
    page.screenshot(path=SHOTS / "desktop-answer.png")

    tab_to(page, "summary:Voir le passage officiel")
    page.keyboard.press("Enter")
    assert "86 €" in answer.locator("blockquote").first.inner_text()

    tab_to(page, "button:Oui")
    page.keyboard.press("Enter")
    assert "J'ai ma réponse" in focused(page)
    page.keyboard.press("Enter")
    answer.get_by_text("Merci pour votre avis.").wait_for()
    assert axe_violations(page) == []

    # A follow-up is read with the previous question.
    tab_to(page, "textarea")
    follow_up, more_drafts = ask(page, "Et pour un mineur de 16 ans ?")
    assert "42" in follow_up.locator(".text").inner_text()
    documents, document_drafts = ask(page, "Quels documents faut-il pour refaire une carte d'identité ?")
    assert documents.locator(".sources").count() == 1
    # The answer was shown as it was written (figures excepted), then replaced by the checked answer.
    assert any(d.strip() for d in drafts + more_drafts + document_drafts)

    # What the documents don't hold: said plainly, with the contact.
    unknown, _ = ask(page, "Quel est le numéro de téléphone du club de pétanque ?")
    assert "Je n'ai pas trouvé" in unknown.inner_text(), unknown.inner_text()
    assert "01 99 00 12 34" in unknown.inner_text() and unknown.locator(".sources").count() == 0
    page.screenshot(path=SHOTS / "desktop-unanswerable.png")

    tab_to(page, "button:Nouvelle question")
    page.keyboard.press("Enter")
    assert focused(page).startswith("textarea")
    assert page.get_by_role("log").locator(".message").count() == 1  # the welcome text only
    page.keyboard.press("Escape")
    assert dialog.is_hidden() and "Une question ?" in focused(page)

    stored = FeedbackStore(state_url("", state / "staff"), 365).records(date.min)
    assert stored and stored[0]["useful"] is True and stored[0]["reason"] == "no_visit_needed"
    assert "adulte" not in json.dumps(stored) and "session" not in json.dumps(stored)  # no question, no session
    folder = state / "feedback"
    gaps = [json.loads(line) for path in folder.glob("lacunes-*.jsonl") for line in path.read_text().splitlines()]
    assert "club de pétanque" in json.dumps(gaps, ensure_ascii=False)  # what no document answered, for staff
    assert "session" not in json.dumps(gaps) and all(set(g) == GAP_FIELDS for g in gaps)
    page.close()


@pytest.mark.parametrize(("name", "viewport"), [("phone-360", (360, 740)), ("zoom-200", (640, 400))])
def test_the_widget_fits_a_phone_and_200_percent_zoom(server, browser, name, viewport):
    base, _ = server
    width, height = viewport
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{base}/demo")
    page.get_by_role("button", name="Une question ?").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1
    assert dialog.get_by_role("log").bounding_box()["height"] >= 150  # the conversation stays readable
    send = dialog.get_by_role("button", name="Envoyer")
    send.scroll_into_view_if_needed()  # a short viewport scrolls the panel
    assert send.is_visible() and 0 <= send.bounding_box()["y"] <= height - send.bounding_box()["height"] + 1
    no_horizontal_scroll = page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert no_horizontal_scroll
    assert axe_violations(page) == []
    page.screenshot(path=SHOTS / f"{name}.png")
    page.close()


def test_the_api_answers_a_follow_up_and_exposes_metrics(server):
    base, _ = server
    with httpx.Client(base_url=base, timeout=120) as client:
        first = client.post("/api/v1/turn", json={"text": "Quels sont les horaires de la déchetterie ?"}).json()
        then = client.post("/api/v1/turn", json={"text": "et le dimanche ?", "session_id": first["session_id"]})
        metrics = client.get("/metrics").text
    assert first["outcome"] in ANSWERS and then.json()["session_id"] == first["session_id"]
    assert then.json()["citations"][0]["source"] == "dechetterie.html"
    assert f'guichet_turns_total{{channel="web",outcome="{first["outcome"]}"}}' in metrics
    assert "guichet_first_token_seconds_count" in metrics and 'guichet_llm_tokens_total{kind="prompt"}' in metrics
