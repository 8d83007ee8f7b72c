"""The staff console (``/staff``): log in, then try a question and see how the answer was made, step by step.

Server-rendered pages (Jinja2, French), no third-party asset. Off (404) until a first account exists
(``guichet staff add``). Every form carries a CSRF token; a try goes through the same capacity gate as residents.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from bot.answer.outcomes import ANSWERS
from bot.answer.steps.passage_retriever import PassageRetriever
from bot.answer.steps.validated_answer import ValidatedAnswerLookup
from bot.phone.dialog import spoken_answer
from bot.timestamps import age_in_days, week_starts
from bot.web.feedback import REASONS_FR
from bot.web.service import STARTING, Refused, Service, service_of
from bot.web.staff.accounts import AccountStore
from bot.web.staff.auth import LOGIN_COOKIE, SESSION_COOKIE, StaffAuth, StaffSession, signing_key
from bot.web.staff.consoles import EXPIRED_FORM, Console, page_context
from bot.web.staff.gap_report import QuestionVectors, gap_overview
from bot.web.staff.question_sets import QuestionSets
from bot.web.staff.reindexing import ReindexBusy, Reindexing

HERE = Path(__file__).resolve().parent.parent
router = APIRouter(prefix="/staff", include_in_schema=False)


@cache
def _auth(directory: Path, database_url: str) -> StaffAuth:
    return StaffAuth(AccountStore(directory, database_url), signing_key(directory))


def staff_auth(service: Service) -> StaffAuth:
    """The console's accounts and sessions, in the service's database."""
    return _auth(service.settings.staff_dir, service.settings.database_url)


def _commune(request: Request) -> dict[str, Any]:
    answerer = service_of(request).answerer  # the commune the agent works on, named in every page's header
    return {"commune": str(answerer.town.get("town_name", "")) if answerer else ""}


STAFF = Console(
    "/staff", "console des agents", SESSION_COOKIE, LOGIN_COOKIE, lambda r: staff_auth(service_of(r)), _commune
)
# The console's pages, sessions and cookie, as every signed-in area's (``bot.web.staff.consoles``)
_page, signed_in, _keep_alive, _base = STAFF.page, STAFF.signed_in, STAFF.keep_alive, page_context


def forbidden(request: Request, auth: StaffAuth, session: StaffSession) -> HTMLResponse:
    """What a reviewer gets for an administrator's action: a page that says so (403)."""
    context = _base(auth, session) | {
        "heading": "Action réservée aux administrateurs",
        "message": "Votre compte est un compte de relecture : demandez à un administrateur de la console.",
    }
    return _page(request, "staff/message.html", context, 403)


def is_admin(session: StaffSession) -> bool:
    return session.account.role == "admin"


@router.get("/console.css")
async def stylesheet() -> FileResponse:
    return FileResponse(HERE / "static" / "staff.css", media_type="text/css")


@router.get("/console.js")
async def script() -> FileResponse:
    return FileResponse(HERE / "static" / "staff.js", media_type="text/javascript")


@router.get("/connexion")
async def login_form(request: Request) -> HTMLResponse:
    return STAFF.login_form(request)


@router.post("/connexion")
async def login(request: Request, name: str = Form(""), password: str = Form(""), csrf: str = Form("")):
    return await STAFF.login(request, name, password, csrf)


@router.post("/deconnexion")
async def logout(request: Request, csrf: str = Form("")):
    return STAFF.logout(request, csrf)


@router.get("/")
async def home(request: Request):
    auth, session = signed_in(request)
    context = _base(auth, session)
    return _keep_alive(_page(request, "staff/try.html", context), request, auth, session)


@router.post("/essayer")
async def try_question(request: Request, question: str = Form(""), channel: str = Form("web"), csrf: str = Form("")):
    auth, session = signed_in(request)
    context = _base(auth, session)
    if not auth.csrf_ok(session.nonce, csrf):
        return _page(request, "staff/try.html", context | {"error": EXPIRED_FORM}, 403)
    service = service_of(request)
    question, limit = question.strip(), service.settings.max_question_chars
    context |= {"question": question, "channel": "voice" if channel == "voice" else "web"}
    if not question or len(question) > limit:
        error = f"Écrivez une question de 1 à {limit} caractères."
        return _page(request, "staff/try.html", context | {"error": error}, 422)
    try:
        admission = service.admit(f"staff:{session.account.name}")  # the same queue and capacity as residents
    except Refused as refused:
        return _page(request, "staff/try.html", context | {"error": refused.message}, refused.status)
    with admission:
        turn = await run_in_threadpool(service.answerer.answer, question, [], context["channel"])
    context |= {"turn": turn, "trace": turn.trace, "thresholds": _thresholds(service)}
    if is_admin(session) and turn.outcome in ANSWERS and turn.citations and not turn.trace.get("validated_answer"):
        lookup = service.answerer.step(ValidatedAnswerLookup)
        answer = {"question": turn.question, "answer": turn.answer, "corpus_hash": lookup.corpus_hash}
        context["approval"] = auth.seal(answer | {"citations": [asdict(c) for c in turn.citations]})
    context["spoken"] = spoken_answer(turn) if context["channel"] == "voice" else ""
    return _keep_alive(_page(request, "staff/try.html", context), request, auth, session)


def _thresholds(service: Service) -> dict[str, float]:
    retriever = service.answerer.step(PassageRetriever)
    return {"min_dense": retriever.min_dense}


@router.post("/approuver")
async def approve(request: Request, approval: str = Form(""), csrf: str = Form("")):
    """Approve an answer a try or a run produced: it is then served as is, until the documents change (admins)."""
    auth, session = signed_in(request)
    if not is_admin(session):
        return forbidden(request, auth, session)
    answer = auth.unseal(approval)
    if not auth.csrf_ok(session.nonce, csrf) or answer is None:
        return RedirectResponse("/staff/reponses-validees?erreur=formulaire", status_code=303)
    lookup = service_of(request).answerer.step(ValidatedAnswerLookup)
    args = (answer["question"], answer["corpus_hash"], answer["answer"], answer["citations"], session.account.name)
    added = lookup.answers.add(*args)
    if added:
        auth.store.audit(session.account.name, "réponse approuvée", answer["question"])
    return RedirectResponse(f"/staff/reponses-validees?{'approuvee' if added else 'deja'}=1", status_code=303)


@router.post("/revoquer")
async def revoke(request: Request, key: str = Form(""), corpus_hash: str = Form(""), csrf: str = Form("")):
    auth, session = signed_in(request)
    if not is_admin(session):
        return forbidden(request, auth, session)
    if not auth.csrf_ok(session.nonce, csrf):
        return RedirectResponse("/staff/reponses-validees?erreur=formulaire", status_code=303)
    answers = service_of(request).answerer.step(ValidatedAnswerLookup).answers
    if answers.revoke(key, corpus_hash, session.account.name):
        auth.store.audit(session.account.name, "réponse révoquée", key)
    return RedirectResponse("/staff/reponses-validees?revoquee=1", status_code=303)


def paris_time(iso: str) -> str:
    """An ISO timestamp as staff read it, in the town's time.

    >>> paris_time("2026-12-01T20:50:47+00:00")
    'le 01/12/2026 à 21:50'
    """
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(ZoneInfo("Europe/Paris")).strftime("le %d/%m/%Y à %H:%M")


NOTICES = {
    "approuvee": "Réponse approuvée : elle est servie telle quelle tant que les documents ne changent pas.",
    "deja": "Cette question a déjà une réponse approuvée sur ces documents.",
    "revoquee": "Réponse révoquée : la question repassera par le chemin normal.",
    "erreur": EXPIRED_FORM,
}


@router.get("/reponses-validees")
async def validated(request: Request):
    """Who approved what and when; answers whose documents changed since are flagged, not served."""
    auth, session = signed_in(request)
    lookup = service_of(request).answerer.step(ValidatedAnswerLookup)
    entries = [
        e | {"served": e["corpus_hash"] == lookup.corpus_hash, "validated_at": paris_time(e.get("validated_at", ""))}
        for e in lookup.answers.entries()
    ]
    notice = next((text for key, text in NOTICES.items() if key in request.query_params), "")
    context = _base(auth, session) | {"entries": entries}
    return _keep_alive(_page(request, "staff/validated.html", context | {"notice": notice}), request, auth, session)


PROBLEMS_FR = {
    "unreadable": "illisible",
    "needs_ocr": "PDF scanné : à passer en reconnaissance de caractères (OCR)",
    "empty": "vide",
    "duplicate": "doublon",
    "unsupported": "format non pris en charge",
    "too_large": "trop volumineux",
    "over_limit": "lecture interrompue (trop longue ou trop lourde)",
    "bad_encoding": "encodage du texte non reconnu",
}


@cache
def _reindexing(staff_dir: Path, index_dir: Path, sources_dir: Path) -> Reindexing:
    return Reindexing(staff_dir, index_dir, sources_dir=sources_dir)


def reindexing_of(service: Service) -> Reindexing:
    """One per worker and folder, so its lock keeps two clicks of this worker from starting two builds."""
    return _reindexing(service.settings.staff_dir, service.settings.index_dir, service.settings.sources_dir)


@router.get("/documents")
async def documents(request: Request):
    """What the index holds, the last ingestion's report, the documents that may be out of date, and the
    re-indexing (started here by an administrator) with its progress."""
    auth, session = signed_in(request)
    return _keep_alive(_documents_page(request, _base(auth, session)), request, auth, session)


def _documents_page(request: Request, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    service = service_of(request)
    service.follow_index()
    index = service.answerer.step(PassageRetriever).index
    context |= document_overview(index, service.settings.stale_after_days)
    reindex = reindexing_of(service).status()
    reindex |= {"started_fr": paris_time(reindex.get("started", "")), "log": reindexing_of(service).log_tail()}
    context["reindex"] = reindex
    context["sources"] = last_sync(service.settings.last_sync_file) if index.manifest.get("sources_file") else None
    return _page(request, "staff/documents.html", context, status)


SOURCE_STATES_FR = {"updated": "mise à jour", "unchanged": "inchangée", "failed": "en échec, dernier contenu gardé"}
SOURCE_KINDS_FR = {"dila": "fiches Service-Public.fr", "website": "site internet", "folder": "dossier"}


def last_sync(path: Path) -> dict[str, Any]:
    """What the last ``guichet sync`` did, per source, in French; empty when none ran yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    rows = [
        s | {"state_fr": SOURCE_STATES_FR.get(s["status"], s["status"]), "kind_fr": SOURCE_KINDS_FR.get(s["kind"], "")}
        for s in data.get("sources", [])
    ]
    return {"finished_fr": paris_time(data.get("finished", "")), "rows": rows}


@router.get("/documents/etat")
async def reindex_state(request: Request):
    """The re-indexing's progress, for the page's script."""
    signed_in(request)
    status = reindexing_of(service_of(request)).status()
    keep = ("state", "state_fr", "stage", "done", "total", "error")
    return JSONResponse({k: status.get(k) for k in keep}, headers={"Cache-Control": "no-store"})


@router.post("/documents/reindexer")
async def reindex(request: Request, csrf: str = Form("")):
    """Rebuild the index from the same folders, in the background (administrators)."""
    auth, session = signed_in(request)
    if not is_admin(session):
        return forbidden(request, auth, session)
    context = _base(auth, session)
    if not auth.csrf_ok(session.nonce, csrf):
        return _documents_page(request, context | {"error": EXPIRED_FORM}, 403)
    service = service_of(request)
    manifest = service.answerer.step(PassageRetriever).index.manifest
    try:
        reindexing_of(service).start(manifest, session.account.name)
    except ReindexBusy:
        return _documents_page(request, context | {"error": "Une mise à jour de l'index est déjà en cours."}, 409)
    except FileNotFoundError as exc:
        error = f"Dossier des documents introuvable sur le serveur : {exc}. Lancez « guichet ingest » à la main."
        return _documents_page(request, context | {"error": error}, 422)
    auth.store.audit(session.account.name, "mise à jour de l'index lancée", ", ".join(manifest.get("roots", [])))
    return RedirectResponse("/staff/documents", status_code=303)


def document_overview(index, stale_after_days: int, today: date | None = None) -> dict[str, Any]:
    """The served generation, one row per document (title, date, passages, stale or not), the build's report."""
    today = today or date.today()
    by_source: dict[str, dict[str, Any]] = {}
    for chunk in index.chunks:
        row = by_source.setdefault(
            chunk.source, {"source": chunk.source, "title": chunk.title, "url": chunk.url, "passages": 0}
        )
        row["passages"] += 1
        row["date"] = chunk.date
    for row in by_source.values():
        age = age_in_days(row["date"], today)
        row["stale"] = age is None or age > stale_after_days
    rows = sorted(by_source.values(), key=lambda r: (not r["stale"], r["date"] or "", r["source"]))
    try:
        report = json.loads((index.generation / "report.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        report = {}
    problems = [p | {"label": PROBLEMS_FR.get(p["problem"], p["problem"])} for p in report.get("problems", [])]
    return {
        "manifest": index.manifest,
        "generation": index.generation.name,
        "documents": rows,
        "stale_count": sum(r["stale"] for r in rows),
        "stale_after_days": stale_after_days,
        "report": report,
        "problems": problems,
        "notes": report.get("notes", []),
    }


WEEKS_SHOWN = 12


@router.get("/avis")
async def feedback(request: Request):
    """Residents' feedback over the last weeks: a chart by week, counts by reason, outcome and document, and the
    answers said to be wrong or incomplete (never who said it: nothing about a resident is stored)."""
    auth, session = signed_in(request)
    service = service_of(request)
    context = _base(auth, session)
    context |= feedback_overview(service.feedback.records(date.today() - timedelta(weeks=WEEKS_SHOWN)))
    context["sets"] = QuestionSets(service.state_url).names()
    context["notice"] = _added_notice(request)
    return _keep_alive(_page(request, "staff/feedback.html", context), request, auth, session)


def _added_notice(request: Request) -> str:
    """What a page says when ``/staff/avis/ajouter`` sends the agent back to it."""
    if "erreur" in request.query_params:
        return EXPIRED_FORM
    added = request.query_params.get("ajoutee")
    return f"Question ajoutée au jeu « {added} »." if added else ""


def feedback_overview(records: list[dict], today: date | None = None) -> dict[str, Any]:
    """Counts for the feedback page; ``weeks`` has one entry per week (Monday first), empty weeks included."""
    starts = week_starts(today or date.today(), WEEKS_SHOWN)
    weeks = [{"start": start, "useful": 0, "not_useful": 0} for start in starts]
    by_reason: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    by_document: Counter[str] = Counter()
    for record in records:
        day = date.fromisoformat(record["day"])
        index = (day - weeks[0]["start"]).days // 7
        if 0 <= index < len(weeks):
            weeks[index]["useful" if record.get("useful") else "not_useful"] += 1
        if record.get("reason"):
            by_reason[REASONS_FR.get(record["reason"], record["reason"])] += 1
        by_outcome[record.get("outcome") or "session expirée"] += 1
        if not record.get("useful"):
            by_document.update(record.get("sources") or [])
    tallest = max((w["useful"] + w["not_useful"] for w in weeks), default=0) or 1
    for week in weeks:
        week["label"] = f"{week['start']:%d/%m}"
        week["useful_height"] = round(120 * week["useful"] / tallest)
        week["not_useful_height"] = round(120 * week["not_useful"] / tallest)
    flagged = [r for r in reversed(records) if r.get("reason") in ("wrong", "incomplete")]
    return {
        "total": len(records),
        "useful": sum(1 for r in records if r.get("useful")),
        "weeks": weeks,
        "by_reason": by_reason.most_common(),
        "by_outcome": by_outcome.most_common(),
        "by_document": by_document.most_common(10),
        "flagged": [r | {"reason_fr": REASONS_FR[r["reason"]]} for r in flagged[:50]],
    }


@router.get("/lacunes")
async def gaps(request: Request):
    """What residents asked that no document answered (no source, only the official sentence, or an answer said
    wrong or incomplete), grouped by meaning, the groups affecting the most residents first."""
    auth, session = signed_in(request)
    service = service_of(request)
    context = _base(auth, session)
    if service.answerer is None:
        return _page(request, "staff/message.html", context | {"message": STARTING, "back": "/staff/"}, 503)
    since = date.today() - timedelta(weeks=WEEKS_SHOWN)
    complaints = [r for r in service.feedback.records(since) if r.get("question")]
    records = [*service.gaps.records(since), *complaints]
    if service.question_vectors is None:
        service.question_vectors = QuestionVectors(service.answerer.step(PassageRetriever).embedder)
    max_distance = float(service.settings.thresholds.get("gaps", {}).get("max_distance", 0.45))
    found = await run_in_threadpool(gap_overview, records, service.question_vectors, max_distance, WEEKS_SHOWN)
    context |= {"gaps": found, "total": len(records), "weeks_shown": WEEKS_SHOWN}
    context["sets"] = QuestionSets(service.state_url).names()
    context["week_labels"] = [f"{start:%d/%m}" for start in week_starts(date.today(), WEEKS_SHOWN)]
    context["notice"] = _added_notice(request)
    return _keep_alive(_page(request, "staff/gaps.html", context), request, auth, session)
