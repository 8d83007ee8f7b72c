"""The syndicate's pages (``/syndicat``): its administrators list the deployment's communes, disable and enable them,
and add one from a folder already on the server.

Signed in like the staff console (``bot.web.staff.consoles``: server-side sessions, CSRF, throttled and audited
logins), with the syndicate's accounts, in the deployment's database (``guichet staff add NAME --syndicate``); off
(404) until a first one exists. Every change goes through ``CommuneAdministration`` (the registry's rules, the
folder's check, the deployment's audit log). A commune disabled here is refused at once by this worker
(``Communes.follow``), within seconds by the others; one added, or enabled when this worker did not load it at start,
is served once ``guichet serve`` restarts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.state.communes import Commune, CommuneError
from bot.web.communes import Communes
from bot.web.staff.auth import StaffAuth, signing_key
from bot.web.staff.consoles import EXPIRED_FORM, Console, deployment_settings, page_context
from bot.web.staff.syndicate import CommuneAdministration, syndicate_accounts

router = APIRouter(prefix="/syndicat", include_in_schema=False)
STATES_FR = {
    "serving": "servie",
    "loading": "en cours de chargement",
    "failed": "ne peut pas être servie",
    "stopped": "plus servie depuis sa désactivation",
    "absent": "pas chargée par ce processus",
}
RELATIVE_FOLDER = "Indiquez le chemin absolu du dossier sur le serveur (par exemple /srv/communes/valbourg)."


@cache
def _auth(directory: Path, database_url: str) -> StaffAuth:
    return StaffAuth(syndicate_accounts(directory, database_url), signing_key(directory))


def syndicate_auth(request: Request) -> StaffAuth:
    """The syndicate's accounts and sessions, in the deployment's database."""
    settings = deployment_settings(request)
    return _auth(settings.staff_dir, settings.database_url)


SYNDICATE = Console(
    "/syndicat", "administration du syndicat", "guichet_syndicat", "guichet_syndicat_login", syndicate_auth
)


def administration(request: Request) -> CommuneAdministration:
    return CommuneAdministration(deployment_settings(request))


def served_here(request: Request) -> Communes | None:
    """The communes this worker serves (None: it serves the one commune of its settings)."""
    communes: Communes | None = request.app.state.communes
    return communes


@router.get("/connexion")
async def login_form(request: Request) -> HTMLResponse:
    return SYNDICATE.login_form(request)


@router.post("/connexion")
async def login(request: Request, name: str = Form(""), password: str = Form(""), csrf: str = Form("")) -> Response:
    return await SYNDICATE.login(request, name, password, csrf)


@router.post("/deconnexion")
async def logout(request: Request, csrf: str = Form("")) -> Response:
    return SYNDICATE.logout(request, csrf)


@router.get("/")
async def communes_page(request: Request) -> Response:
    auth, session = SYNDICATE.signed_in(request)
    return SYNDICATE.keep_alive(_communes_page(request, page_context(auth, session)), request, auth, session)


@dataclass(frozen=True)
class Row:
    """A registered commune, and what this worker does with it (``Communes.state``; ``error``: why it failed)."""

    commune: Commune
    state: str
    error: str | None = None

    @property
    def state_fr(self) -> str:
        return STATES_FR[self.state]


def _communes_page(request: Request, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """Every registered commune with what this worker does with it, the last change's notice, the form to add one."""
    registry, communes = administration(request).registry, served_here(request)
    if communes is None:
        rows = [Row(commune, "absent") for commune in registry.all()]
    else:
        registered = communes.follow(registry)  # the registry as it is now, whoever changed it last
        errors = {slug: service.error for slug, service in communes.services.items()}
        rows = [Row(c, communes.state(c.slug), errors.get(c.slug)) for c in registered]
    context |= {"rows": rows, "single": communes is None, "form": context.get("form", {})}
    context["notice"] = _notice(request, {row.commune.slug: row.state for row in rows})
    return SYNDICATE.page(request, "syndicat/communes.html", context, status)


def _notice(request: Request, states: dict[str, str]) -> str:
    """What the page says after a change (about a registered commune only: nothing from the address is echoed)."""
    added, disabled, enabled = (request.query_params.get(key, "") for key in ("ajoutee", "desactivee", "reactivee"))
    if added in states:
        return f"Commune « {added} » enregistrée : elle sera servie au prochain redémarrage de guichet serve."
    if disabled in states:
        return (
            f"Commune « {disabled} » désactivée : ce processus ne la sert plus ; les autres processus et serveurs "
            "cessent de la servir sous quelques secondes."
        )
    if enabled not in states:
        return ""
    if states[enabled] == "absent":
        return f"Commune « {enabled} » réactivée : elle sera servie au prochain redémarrage de guichet serve."
    if states[enabled] == "failed":
        return f"Commune « {enabled} » réactivée, mais ce processus ne peut pas la servir (raison ci-dessous)."
    return f"Commune « {enabled} » réactivée : elle est servie de nouveau."


def _lines(text: str) -> list[str]:
    """The host names or numbers of a form's text box: one per line (commas also separate them)."""
    return [item.strip() for item in re.split(r"[,\n]", text) if item.strip()]


@router.post("/communes")
async def add(
    request: Request,
    slug: str = Form(""),
    name: str = Form(""),
    folder: str = Form(""),
    hosts: str = Form(""),
    numbers: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    """Register a commune from a folder on the server, checked as ``guichet commune add`` checks it."""
    auth, session = SYNDICATE.signed_in(request)
    form = {"slug": slug, "name": name, "folder": folder, "hosts": hosts, "numbers": numbers}
    context = page_context(auth, session) | {"form": form}
    if not auth.csrf_ok(session.nonce, csrf):
        return _communes_page(request, context | {"error": EXPIRED_FORM}, 403)
    if not folder.strip() or not Path(folder.strip()).is_absolute():
        return _communes_page(request, context | {"error": RELATIVE_FOLDER}, 422)
    try:
        commune = administration(request).add(
            slug.strip(), name, Path(folder.strip()), _lines(hosts), _lines(numbers), session.account.name
        )
    except CommuneError as exc:
        return _communes_page(request, context | {"error": str(exc)}, 422)
    return RedirectResponse(f"/syndicat/?ajoutee={commune.slug}", status_code=303)


@router.post("/communes/{slug}/desactiver")
async def disable(request: Request, slug: str, csrf: str = Form("")) -> Response:
    return _set_enabled(request, slug, False, csrf)


@router.post("/communes/{slug}/activer")
async def enable(request: Request, slug: str, csrf: str = Form("")) -> Response:
    return _set_enabled(request, slug, True, csrf)


def _set_enabled(request: Request, slug: str, enabled: bool, csrf: str) -> Response:
    """Disable or enable a commune in the registry, and in this worker at once."""
    auth, session = SYNDICATE.signed_in(request)
    context = page_context(auth, session)
    if not auth.csrf_ok(session.nonce, csrf):
        return _communes_page(request, context | {"error": EXPIRED_FORM}, 403)
    communes_admin = administration(request)
    try:
        communes_admin.set_enabled(slug, enabled, session.account.name)
    except CommuneError as exc:
        return _communes_page(request, context | {"error": str(exc)}, 404)
    if (communes := served_here(request)) is not None:
        communes.follow(communes_admin.registry)  # at once in this worker; the others within seconds
    return RedirectResponse(f"/syndicat/?{'reactivee' if enabled else 'desactivee'}={slug}", status_code=303)
