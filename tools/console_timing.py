"""The staff console as an agent uses it, timed in headless Chromium against the real server and models.

Logs in, uploads a question set (the first N cases of the demo town's dev split), runs it, waits for the verdict,
opens the first failed case: the time from login to that case. Then, for each console page: weight (bytes
transferred, document and assets), first contentful paint, axe-core's WCAG 2.1 A/AA violations, and a screenshot
at 1280 px. Figures in ``var/console/console.{json,md}``, screenshots beside them.

    .venv/bin/python tools/console_timing.py --cases 80
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.web.staff.accounts import AccountStore  # noqa: E402
from tests.e2e.test_widget_browser import CHROMIUM, CHROMIUM_ARGS, axe_violations  # noqa: E402
from tools.loadcheck import served, write_report  # noqa: E402

PASSWORD = "une phrase de passe pour la mesure"
PAGE_WEIGHT = """() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const assets = performance.getEntriesByType('resource');
    const paint = performance.getEntriesByName('first-contentful-paint')[0];
    return {
        bytes: (nav ? nav.transferSize : 0) + assets.reduce((n, r) => n + r.transferSize, 0),
        requests: 1 + assets.length,
        first_paint_ms: paint ? Math.round(paint.startTime) : null,
    };
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "var" / "index" / "demo")
    parser.add_argument("--dataset", type=Path, default=ROOT / "eval" / "datasets" / "dev" / "demo.jsonl")
    parser.add_argument("--cases", type=int, default=80)
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "console")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    lines = [line for line in args.dataset.read_text(encoding="utf-8").splitlines() if line.strip()][: args.cases]
    args.out.mkdir(parents=True, exist_ok=True)
    set_file = args.out / "set.jsonl"
    set_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory() as staff_dir:
        AccountStore(Path(staff_dir)).add("mesure", "admin", PASSWORD)
        env = {"GUICHET_STAFF_DIR": staff_dir, "GUICHET_FEEDBACK_DIR": str(Path(staff_dir) / "feedback")}
        with served(args.index, args.port, capacity=4, extra_env=env), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            journey, run_url, case_url = agent_journey(page, base, set_file)
            pages = {
                "connexion": None,
                "essayer": f"{base}/staff/",
                "jeux": f"{base}/staff/jeux",
                "essai": run_url,
                "cas": case_url,
                "reponses-validees": f"{base}/staff/reponses-validees",
                "avis": f"{base}/staff/avis",
                "documents": f"{base}/staff/documents",
            }
            measured = {name: measure(page, url, args.out / f"{name}.png") for name, url in pages.items() if url}
            context = browser.new_context(viewport={"width": 1280, "height": 900})  # no session: the login page
            measured["connexion"] = measure(context.new_page(), f"{base}/staff/connexion", args.out / "connexion.png")
            browser.close()
    data = {"cases": len(lines), "journey": journey, "pages": measured}
    write_report(args.out, "console", data, markdown(data))


def agent_journey(page, base: str, set_file: Path) -> tuple[dict, str, str]:
    """Login → upload → run → verdict → first failed case, timed."""
    page.goto(f"{base}/staff/connexion")
    started = time.monotonic()
    page.get_by_label("Identifiant").fill("mesure")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}/staff/")
    page.get_by_role("link", name="Jeux de questions").click()
    page.get_by_label("Nom du jeu").fill("mesure")
    page.get_by_label("Fichier JSONL ou CSV").set_input_files(str(set_file))
    page.get_by_role("button", name="Enregistrer le jeu").click()
    page.wait_for_url(f"{base}/staff/jeux?enregistre=mesure")
    page.get_by_role("button", name="Lancer le jeu mesure").click()
    page.wait_for_url(f"{base}/staff/essais/*")
    run_started = time.monotonic()
    run_url = page.url
    page.wait_for_selector("text=Verdict de mise en service", timeout=3_600_000)
    run_seconds = time.monotonic() - run_started
    page.get_by_label("Résultat").select_option("echecs")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_load_state()
    page.locator("tbody th a").first.click()
    page.wait_for_selector("#etapes")
    journey = {
        "login_to_first_failed_case_s": round(time.monotonic() - started, 1),
        "run_s": round(run_seconds, 1),
        "agent_steps_s": round(time.monotonic() - started - run_seconds, 1),
    }
    return journey, run_url.split("?")[0], page.url


def measure(page, url: str, shot: Path) -> dict:
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0", timeout=5000)
    figures = page.evaluate(PAGE_WEIGHT)
    page.screenshot(path=shot, full_page=True)
    figures["axe_violations"] = axe_violations(page)
    return figures


def markdown(data: dict) -> str:
    journey = data["journey"]
    lines = [
        f"Staff console, real server and models, headless Chromium at 1280 px; a {data['cases']}-question set.",
        "",
        f"- Login to the first failed case opened: **{journey['login_to_first_failed_case_s']} s**, of which the run "
        f"took {journey['run_s']} s and the agent's steps (pages, upload, filter) {journey['agent_steps_s']} s.",
        "",
        "| page | weight (KB) | requests | first contentful paint (ms) | axe violations |",
        "|---|---|---|---|---|",
    ]
    for name, p in data["pages"].items():
        weight, paint, axe = f"{p['bytes'] / 1000:.1f}", p["first_paint_ms"], len(p["axe_violations"])
        lines.append(f"| {name} | {weight} | {p['requests']} | {paint} | {axe} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
