"""The staff console's question sets: upload or edit a set, run it in the background with live progress, browse
its results and each case's trace, compare two runs, and read the release gate's verdict.

A run goes through the residents' capacity gate and yields to their turns (``Service.admit_when_idle``); one run
at a time, whichever worker is asked (``bot.web.staff.runs``).
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from bot.answer.outcomes import ANSWERS
from bot.web.routes.staff import (
    EXPIRED_FORM,
    _base,
    _keep_alive,
    _page,
    is_admin,
    paris_time,
    signed_in,
)
from bot.web.service import service_of
from bot.web.staff.question_sets import QuestionSets, SetError
from bot.web.staff.runs import RunBusy, Runs
from eval.dataset import Case
from eval.diff import diff

router = APIRouter(prefix="/staff", include_in_schema=False)
METRICS_FR = {
    "handled_right": "Questions traitées correctement",
    "answer_accuracy": "Réponses justes",
    "refusal_accuracy": "Refus justes",
    "invented_facts": "Chiffres ou contacts inventés",
    "citation_validity": "Citations valides",
    "ordinary_routed_away": "Questions ordinaires détournées",
    "latency_p50_s": "Temps de réponse médian (s)",
}
BUSY = "Une série est déjà en cours : attendez qu'elle se termine (ou arrêtez-la) avant d'en lancer une autre."


@cache
def _runs(database_url: str, gate_file: Path) -> Runs:
    return Runs(database_url, gate_file)


def runs_of(request: Request) -> Runs:
    """One per worker and commune: it holds the stop switches of the runs this worker started."""
    service = service_of(request)
    return _runs(service.state_url, service.settings.gate_file)


def sets_of(request: Request) -> QuestionSets:
    return QuestionSets(service_of(request).state_url)


# -- sets


@router.get("/jeux")
async def sets_page(request: Request):
    auth, session = signed_in(request)
    return _keep_alive(_sets_page(request, _base(auth, session)), request, auth, session)


def _sets_page(request: Request, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    runs = runs_of(request)
    listed = runs.list()
    for run in listed:
        run["started_fr"] = paris_time(run["started"])
    context |= {
        "sets": [s | {"changed_fr": paris_time(s["changed"])} for s in sets_of(request).names()],
        "runs": listed,
        "finished": [r for r in listed if r["state"] == "finished"],
        "active": runs.active(),
    }
    return _page(request, "staff/sets.html", context, status)


@router.post("/jeux")
async def save_set(
    request: Request,
    name: str = Form(""),
    content: str = Form(""),
    upload: Annotated[UploadFile | None, File()] = None,
    editor: str = Form(""),
    csrf: str = Form(""),
):
    """Save a set from an uploaded file (JSONL or CSV) or from the edit form's text; a bad file changes nothing."""
    auth, session = signed_in(request)
    context = _base(auth, session) | {"name": name}
    if not auth.csrf_ok(session.nonce, csrf):
        return _sets_page(request, context | {"error": EXPIRED_FORM}, 403)
    fmt = "jsonl"
    if upload is not None and upload.filename:
        raw = await upload.read()
        fmt = "csv" if upload.filename.lower().endswith(".csv") else "jsonl"
        try:
            content = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _sets_page(request, context | {"error": "Le fichier doit être enregistré en UTF-8."}, 422)
    name = name.strip().lower()
    try:
        cases = sets_of(request).save(name, content, fmt)
    except SetError as exc:
        context |= {"error": str(exc), "lines": exc.lines}
        if editor:  # the edit page again, with the text as typed: nothing is lost
            return _page(request, "staff/set.html", context | {"content": content}, 422)
        return _sets_page(request, context, 422)
    auth.store.audit(session.account.name, "jeu de questions enregistré", f"{name} ({len(cases)} questions)")
    return RedirectResponse(f"/staff/jeux?enregistre={name}", status_code=303)


@router.get("/jeux/{name}")
async def edit_set(request: Request, name: str):
    auth, session = signed_in(request)
    sets = sets_of(request)
    context = _base(auth, session) | {"name": name}
    try:
        context["content"] = sets.text(name)
        context["cases"] = len(sets.read(name))
    except SetError as exc:
        context |= {"error": str(exc), "lines": exc.lines}
    return _keep_alive(_page(request, "staff/set.html", context), request, auth, session)


@router.post("/jeux/{name}/lancer")
async def start_run(request: Request, name: str, csrf: str = Form("")):
    """Run a set against the current index; a second run while one is going is refused, not queued."""
    auth, session = signed_in(request)
    context = _base(auth, session)
    if not auth.csrf_ok(session.nonce, csrf):
        return _sets_page(request, context | {"error": EXPIRED_FORM}, 403)
    try:
        cases = sets_of(request).read(name)
    except SetError as exc:
        return _sets_page(request, context | {"error": str(exc), "lines": exc.lines}, 422)
    service = service_of(request)
    if service.answerer is None:
        return _sets_page(request, context | {"error": "Le service démarre : réessayez dans un instant."}, 503)
    runs = runs_of(request)
    answerer = service.answerer.without_validated_answers()
    try:
        run_id = runs.start(answerer, name, cases, session.account.name, service.admit_when_idle)
    except RunBusy as busy:
        return _sets_page(request, context | {"error": BUSY, "busy": busy.run_id}, 409)
    auth.store.audit(session.account.name, "série lancée", f"{name} ({len(cases)} questions, essai {run_id})")
    return RedirectResponse(f"/staff/essais/{run_id}", status_code=303)


# -- runs


def _found(request: Request, run_id: str) -> dict | None:
    return runs_of(request).status(run_id)


def _missing(request: Request, context: dict[str, Any]) -> HTMLResponse:
    message = "Cet essai n'existe pas ou a été supprimé."
    return _page(request, "staff/message.html", context | {"heading": "Essai introuvable", "message": message}, 404)


@router.get("/essais/{run_id}/etat")
async def run_state(request: Request, run_id: str):
    """The run's progress, for the page's script (every 2 s while it runs)."""
    signed_in(request)
    status = _found(request, run_id)
    if status is None:
        return JSONResponse({"error": "Essai introuvable."}, status_code=404)
    keep = ("state", "state_fr", "done", "total", "passed", "error")
    return JSONResponse({k: status.get(k) for k in keep}, headers={"Cache-Control": "no-store"})


@router.get("/essais/{run_id}")
async def run_page(request: Request, run_id: str, etat: str = "", categorie: str = "", issue: str = ""):
    """A run: its progress while it runs; then the gate's verdict and the cases, filtered."""
    auth, session = signed_in(request)
    context = _base(auth, session)
    status = _found(request, run_id)
    if status is None:
        return _missing(request, context)
    runs = runs_of(request)
    results = runs.results(run_id)
    shown = [
        r
        for r in results
        if (etat != "echecs" or not r["passed"])
        and (etat != "reussis" or r["passed"])
        and (not categorie or r["category"] == categorie)
        and (not issue or r["outcome"] == issue)
    ]
    summary = runs.summary(run_id)
    context |= {
        "run": status | {"started_fr": paris_time(status["started"]), "finished_fr": paris_time(status["finished"])},
        "results": shown,
        "total_results": len(results),
        "categories": sorted({r["category"] for r in results}),
        "outcomes": sorted({r["outcome"] for r in results}),
        "filters": {"etat": etat, "categorie": categorie, "issue": issue},
        "summary": [(METRICS_FR[k], summary[k]) for k in METRICS_FR if k in summary],
        "gate": [c | {"label": METRICS_FR.get(c["metric"], c["metric"])} for c in status.get("gate", [])],
    }
    return _keep_alive(_page(request, "staff/run.html", context), request, auth, session)


@router.post("/essais/{run_id}/arreter")
async def stop_run(request: Request, run_id: str, csrf: str = Form("")):
    auth, session = signed_in(request)
    if auth.csrf_ok(session.nonce, csrf) and runs_of(request).stop(run_id):
        auth.store.audit(session.account.name, "série arrêtée", f"essai {run_id}")
    return RedirectResponse(f"/staff/essais/{run_id}", status_code=303)


@router.get("/essais/{run_id}/cas/{case_id}")
async def case_page(request: Request, run_id: str, case_id: str):
    """One case of a run: what was expected, what came back, and how the answer was made."""
    auth, session = signed_in(request)
    context = _base(auth, session)
    status = _found(request, run_id)
    result = next((r for r in runs_of(request).results(run_id) if r["id"] == case_id), None) if status else None
    if result is None:
        return _missing(request, context)
    trace = runs_of(request).trace(run_id, case_id)
    context |= {
        "run": status,
        "case": result,
        "trace": trace,
        "passages": result.get("passages", []),
        "seen_question": result["question"],
    }
    corpus_hash = status.get("corpus_hash", "")
    approvable = result["passed"] and result["outcome"] in ANSWERS and result["citations"] and corpus_hash
    if is_admin(session) and approvable:
        answer = {"question": result["question"], "answer": result["answer"], "corpus_hash": corpus_hash}
        context["approval"] = auth.seal(answer | {"citations": result["citations"]})
    return _keep_alive(_page(request, "staff/case.html", context), request, auth, session)


@router.get("/comparer")
async def compare(request: Request, avant: str = "", apres: str = ""):
    """Two finished runs side by side: the headline figures, the cases that regressed and those now fixed."""
    auth, session = signed_in(request)
    context = _base(auth, session)
    runs = runs_of(request)
    old, new = runs.status(avant), runs.status(apres)
    if not old or not new or old["state"] != "finished" or new["state"] != "finished":
        context |= {"heading": "Comparaison impossible", "message": "Choisissez deux essais terminés."}
        return _page(request, "staff/message.html", context | {"back": "/staff/jeux"}, 422)
    with tempfile.TemporaryDirectory(prefix="guichet-comparer-") as scratch:  # the diff reads the runner's folders
        changes = diff(runs.export(avant, Path(scratch) / "avant"), runs.export(apres, Path(scratch) / "apres"))
    context |= {
        "old": old,
        "new": new,
        "metrics": [(METRICS_FR.get(k, k), a, b) for k, (a, b) in changes["metrics"].items()],
        "regressions": changes["regressions"],
        "fixes": changes["fixes"],
        "only_old": changes["only_old"],
        "only_new": changes["only_new"],
    }
    return _keep_alive(_page(request, "staff/compare.html", context), request, auth, session)


# -- a resident's complaint becomes a test case


ADDS_FROM = ("/staff/avis", "/staff/lacunes")  # the pages a question is added to a set from (and returned to)


@router.post("/avis/ajouter")
async def add_to_set(
    request: Request,
    question: str = Form(""),
    set_name: str = Form(""),
    expected: str = Form(""),
    csrf: str = Form(""),
    back: str = Form("/staff/avis"),
):
    """Add a question from the feedback or the gaps page to a set, with the words a right answer must contain."""
    auth, session = signed_in(request)
    back = back if back in ADDS_FROM else "/staff/avis"
    if not auth.csrf_ok(session.nonce, csrf):
        return RedirectResponse(f"{back}?erreur=formulaire", status_code=303)
    question = question.strip()
    words = [w.strip() for w in expected.split(";") if w.strip()]
    sets = sets_of(request)
    set_name = set_name.strip().lower()
    context = _base(auth, session) | {"back": back, "heading": "Question non ajoutée"}
    if not question or not words:
        context["message"] = "Indiquez la question et au moins un mot ou chiffre que la bonne réponse doit contenir."
        return _page(request, "staff/message.html", context, 422)
    try:
        taken = {c.id for c in sets.read(set_name)} if sets.exists(set_name) else set()
        case_id = next(f"avis-{n:03d}" for n in range(1, len(taken) + 2) if f"avis-{n:03d}" not in taken)
        case = Case(id=case_id, question=question, kind="answer", category="avis des habitants", must_include=words)
        sets.append(set_name, case)
    except SetError as exc:
        context["message"] = str(exc)
        return _page(request, "staff/message.html", context, 422)
    auth.store.audit(session.account.name, "question ajoutée à un jeu", f"{set_name} ({case_id})")  # no resident text
    return RedirectResponse(f"{back}?ajoutee={set_name}", status_code=303)
