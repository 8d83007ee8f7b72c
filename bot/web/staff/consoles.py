"""The signed-in areas of the site, and the one way into each: each commune's staff console (``/staff``) and the
syndicate's pages (``/syndicat``).

An area is a ``Console``: its address, its cookies (scoped to that address), the name its pages show in their
header, and whose accounts open it (a ``StaffAuth`` over the store of one kind of account). The login form, the
throttled and audited login, the server-side session's cookie, logout and every page's frame (French, never
cached) are written once here; an area is off (404) until a first account of its kind exists.

>>> SYNDICATE = Console("/syndicat", "administration du syndicat", SESSION, LOGIN, auth_of)  # doctest: +SKIP
>>> auth, session = SYNDICATE.signed_in(request)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.requests import HTTPConnection

from bot.settings import Settings
from bot.web.service import client_address
from bot.web.staff.accounts import ROLE_NAMES_FR
from bot.web.staff.auth import IDLE_SECONDS, StaffAuth, StaffSession

HERE = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["role_names"] = ROLE_NAMES_FR
BAD_LOGIN = "Identifiant ou mot de passe incorrect."
EXPIRED_FORM = "Le formulaire a expiré : rechargez la page et recommencez."


def deployment_settings(request: HTTPConnection) -> Settings:
    """The deployment's settings (a commune's own are its ``Service``'s: its folders, the same limits)."""
    settings: Settings = request.app.state.settings
    return settings


def _no_frame(_: Request) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Console:
    """One signed-in area: ``prefix`` its address, ``area`` its name in the header (French), its two cookies (the
    session's, and the login form's nonce), ``auth_of`` the accounts and sessions that open it for a request, and
    ``frame`` what else every page of it shows (the commune the staff console works on)."""

    prefix: str
    area: str
    session_cookie: str
    login_cookie: str
    auth_of: Callable[[Request], StaffAuth]
    frame: Callable[[Request], dict[str, Any]] = _no_frame

    def page(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        """A page of this area; never cached (staff pages hold traces and accounts)."""
        context = {"prefix": self.prefix, "area": self.area, **self.frame(request), **context}
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        return response

    def on(self, request: Request) -> StaffAuth:
        """The area's accounts and sessions; a 404 while no account of its kind exists (the area is off)."""
        auth = self.auth_of(request)
        if not auth.store.any_enabled():
            raise HTTPException(404)
        return auth

    def session(self, request: Request) -> tuple[StaffAuth, StaffSession | None]:
        """The area's accounts and the session its cookie proves, if any; a valid session proves the area is on, so
        the accounts are counted only without one."""
        auth = self.auth_of(request)
        session = auth.read(request.cookies.get(self.session_cookie))
        if session is None and not auth.store.any_enabled():
            raise HTTPException(404)
        return auth, session

    def signed_in(self, request: Request) -> tuple[StaffAuth, StaffSession]:
        """The area's accounts and the signed-in session; without one, the browser is sent to the login page."""
        auth, session = self.session(request)
        if session is None:
            raise HTTPException(303, headers={"Location": f"{self.prefix}/connexion"})
        return auth, session

    def keep_alive(self, response: Response, request: Request, auth: StaffAuth, session: StaffSession) -> Response:
        """The session's cookie, its browser lifetime the idle one again (the server restarted its idle clock)."""
        response.set_cookie(
            self.session_cookie,
            auth.cookie(session),
            max_age=IDLE_SECONDS,
            path=self.prefix,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
        return response

    def login_form(self, request: Request) -> HTMLResponse:
        auth = self.on(request)
        nonce = request.cookies.get(self.login_cookie) or secrets.token_urlsafe(16)
        response = self.page(request, "staff/login.html", {"csrf": auth.csrf_token(nonce)})
        response.set_cookie(self.login_cookie, nonce, path=self.prefix, httponly=True, samesite="strict")
        return response

    async def login(self, request: Request, name: str, password: str, csrf: str) -> Response:
        """Check the login form (its CSRF token, the attempts allowed for this name and client, the password), audit
        the attempt, and open a session: the browser goes to the area's first page."""
        auth = self.on(request)
        if not auth.csrf_ok(request.cookies.get(self.login_cookie), csrf):
            return self.page(request, "staff/login.html", {"csrf": "", "error": EXPIRED_FORM}, 403)
        context, wanted = {"csrf": csrf, "name": name}, name.strip().lower()
        wait = auth.login_wait(wanted, client_address(request, deployment_settings(request)))
        if wait:
            minutes = max(1, math.ceil(wait / 60))
            message = f"Trop de tentatives de connexion. Réessayez dans {minutes} minute{'s' if minutes > 1 else ''}."
            return self.page(request, "staff/login.html", context | {"error": message}, 429)
        account = await run_in_threadpool(auth.store.verify, wanted, password)
        if account is None:
            auth.store.audit(wanted[:32] or "?", "connexion refusée")
            return self.page(request, "staff/login.html", context | {"error": BAD_LOGIN}, 401)
        auth.store.audit(account.name, "connexion")
        response = RedirectResponse(f"{self.prefix}/", status_code=303)
        response.delete_cookie(self.login_cookie, path=self.prefix)
        return self.keep_alive(response, request, auth, auth.open(account))

    def logout(self, request: Request, csrf: str) -> Response:
        """End the session on every worker at once (with the form's CSRF token), and forget its cookie."""
        auth, session = self.session(request)
        if session is not None and auth.csrf_ok(session.nonce, csrf):
            auth.close(session)
            auth.store.audit(session.account.name, "déconnexion")
        response = RedirectResponse(f"{self.prefix}/connexion", status_code=303)
        response.delete_cookie(self.session_cookie, path=self.prefix)
        return response


def page_context(auth: StaffAuth, session: StaffSession) -> dict[str, Any]:
    """What every signed-in page shows: the account, and the CSRF token its forms carry."""
    return {"account": session.account, "csrf": auth.csrf_token(session.nonce)}


def _secure(request: Request) -> bool:
    """Whether the browser reached us over HTTPS (behind a trusted proxy, as it says): the cookie is then Secure."""
    forwarded = request.headers.get("x-forwarded-proto") if deployment_settings(request).trust_proxy_headers else None
    return (forwarded or request.url.scheme) == "https"
