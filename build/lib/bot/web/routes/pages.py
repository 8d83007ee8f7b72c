"""What a browser loads: the chat widget and its settings, the demo page, the residents' page about the bot."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from bot.web.feedback import REASONS_FR
from bot.web.service import service_of

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter()


@router.get("/api/v1/widget/config", tags=["widget"])
async def widget_config(request: Request) -> dict:
    """Title, welcome text, colours and contact for the chat widget (``config/town.yaml``, ``widget``)."""
    service = service_of(request)
    town = service.answerer.town if service.answerer else {}
    widget = town.get("widget", {})
    return {
        "title": widget.get("title", "Assistant de la mairie"),
        "welcome": widget.get("welcome", ""),
        "colors": widget.get("colors", {}),
        "contact": town.get("reception", ""),
        "about_url": "a-propos",
        "max_question_chars": service.settings.max_question_chars,
        "feedback_reasons": REASONS_FR,
    }


@router.get("/widget.js", include_in_schema=False)
async def widget_script():
    return FileResponse(STATIC / "widget.js", media_type="text/javascript", headers={"Cache-Control": "max-age=300"})


@router.get("/widget.css", include_in_schema=False)
async def widget_style():
    return FileResponse(STATIC / "widget.css", media_type="text/css", headers={"Cache-Control": "max-age=300"})


@router.get("/demo", response_class=HTMLResponse, include_in_schema=False)
async def demo() -> str:
    """A fake town homepage with the widget embedded, as a webmaster would do it."""
    return (STATIC / "demo.html").read_text(encoding="utf-8")


@router.get("/a-propos", response_class=HTMLResponse)
async def about() -> str:
    """The page residents can read: what the assistant is, which model runs, what is (not) kept."""
    return (STATIC / "a-propos.html").read_text(encoding="utf-8")
