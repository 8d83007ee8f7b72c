"""Read one file of any supported format into a ``SourceDocument`` (Markdown text plus metadata).

Every loader returns Markdown so a single heading-aware chunker serves all formats. A file that cannot be
used raises ``Unusable`` with a French-free, developer-facing reason that the ingestion report lists.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bs4 import BeautifulSoup
from pypdf import PdfReader

from ingestion import dila

SUPPORTED = {".md", ".markdown", ".html", ".htm", ".pdf", ".txt", ".xml"}
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
# A header row, a |---|---| separator row, then body rows.
PIPE_TABLE = re.compile(r"^\|.*\|[ \t]*\n\|[ \t:|-]+\|[ \t]*\n(?:\|.*\|[ \t]*(?:\n|\Z))*", re.M)
# Below this many characters of text per page, a PDF is taken to be a scan that needs OCR.
MIN_PDF_CHARS_PER_PAGE = 40


class Unusable(Exception):
    """This file cannot be ingested; the message says why (listed in the ingestion report)."""


@dataclass
class SourceDocument:
    """One document of the corpus, as the chunker sees it."""

    source: str  # path relative to the ingested root, with forward slashes
    title: str
    url: str
    date: str
    markdown: str


def load(path: Path, root: Path) -> SourceDocument:
    """Load ``path`` (inside ``root``) with the loader for its extension."""
    suffix = path.suffix.lower()
    data = path.read_bytes()
    if not data.strip():
        raise Unusable("empty file")
    if suffix in (".md", ".markdown"):
        meta, text = _markdown(_decode(data))
    elif suffix in (".html", ".htm"):
        meta, text = _html(data)
    elif suffix == ".pdf":
        meta, text = _pdf(data)
    elif suffix == ".xml":
        if not dila.is_dila_fiche(data[:4096]):
            raise Unusable("XML file is not a Service-Public.fr fiche (no <Publication> root)")
        fiche = dila.parse_fiche(data)
        meta, text = {k: fiche[k] for k in ("title", "url", "date")}, fiche["markdown"]
    elif suffix == ".txt":
        meta, text = {}, _decode(data)
    else:
        raise Unusable(f"unsupported file type {suffix}")
    if not text.strip():
        raise Unusable("no text content")
    source = path.relative_to(root).as_posix()
    title = meta.get("title") or _first_heading(text) or path.stem.replace("-", " ").replace("_", " ")
    date = meta.get("date") or datetime.fromtimestamp(path.stat().st_mtime, UTC).date().isoformat()
    return SourceDocument(
        source=source, title=title.strip(), url=meta.get("url", ""), date=str(date), markdown=text.strip()
    )


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Unusable("text is neither UTF-8 nor Windows-1252")


def _first_heading(text: str) -> str:
    match = re.search(r"^#\s+(.+)$", text, re.M)
    return match.group(1) if match else ""


def _markdown(text: str) -> tuple[dict, str]:
    """Markdown with optional ``key: value`` front matter (title, url, date)."""
    meta: dict = {}
    match = FRONT_MATTER.match(text)
    if match:
        for line in match.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip().strip("'\"")
        text = text[match.end() :]
    return meta, PIPE_TABLE.sub(_pipe_table, text)


def _pipe_table(match: re.Match) -> str:
    """A Markdown pipe table as one line per row, each cell prefixed by its column header."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in match.group(0).strip().splitlines()]
    header, body = rows[0], [r for r in rows[2:] if any(r)]
    lines = [
        "- " + " ; ".join(f"{h} : {v}" if h else v for h, v in zip(header, row, strict=False) if v) for row in body
    ]
    return "\n".join(lines) + "\n"


def _html(data: bytes) -> tuple[dict, str]:
    """HTML to Markdown: headings keep their level, lists become bullets, table rows repeat the header."""
    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "header", "noscript", "form"]):
        tag.decompose()
    meta = {
        "title": soup.title.get_text(strip=True) if soup.title else "",
        "url": _meta_content(soup, "og:url") or (soup.find("link", rel="canonical") or {}).get("href", ""),
        "date": _meta_content(soup, "dcterms.modified") or _meta_content(soup, "date"),
    }
    body = soup.body or soup
    blocks: list[str] = []
    for el in body.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "table", "dt", "dd", "address"]):
        if el.find_parent(["table", "li"]) and el.name != "table":
            continue  # rendered with its table or list item
        text = " ".join(el.get_text(" ", strip=True).split())
        if el.name == "table":
            blocks.append(_html_table(el))
        elif not text:
            continue
        elif el.name[0] == "h":
            blocks.append(f"{'#' * int(el.name[1])} {text}")
        elif el.name == "li":
            blocks.append(f"- {text}")
        else:
            blocks.append(text)
    return meta, "\n\n".join(b for b in blocks if b)


def _meta_content(soup: BeautifulSoup, name: str) -> str:
    tag = soup.find("meta", attrs={"name": name}) or soup.find("meta", attrs={"property": name})
    return tag.get("content", "") if tag else ""


def _html_table(table) -> str:
    rows = table.find_all("tr")
    if not rows:
        return ""
    header = [c.get_text(" ", strip=True) for c in rows[0].find_all(["th", "td"])]
    has_header = bool(rows[0].find("th"))
    caption = table.caption.get_text(" ", strip=True) if table.caption else ""
    lines = [f"Tableau : {caption}"] if caption else []
    for row in rows[1:] if has_header else rows:
        cells = [c.get_text(" ", strip=True) for c in row.find_all(["th", "td"])]
        pairs = [f"{h} : {v}" if has_header and h else v for h, v in zip(header, cells, strict=False) if v]
        if pairs:
            lines.append("- " + " ; ".join(pairs))
    return "\n".join(lines)


def _pdf(data: bytes) -> tuple[dict, str]:
    """PDF text layer, one section per page; a PDF without text is reported as needing OCR."""
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types for damaged files
        raise Unusable(f"unreadable PDF ({type(exc).__name__}: {exc})") from None
    chars = sum(len(p.strip()) for p in pages)
    if not pages or chars < MIN_PDF_CHARS_PER_PAGE * len(pages) / 4:
        raise Unusable("PDF has no text layer (scanned image): it needs OCR before ingestion")
    info = reader.metadata or {}
    title = str(info.get("/Title") or "").strip()
    date = _pdf_date(str(info.get("/ModDate") or info.get("/CreationDate") or ""))
    text = "\n\n".join(f"## Page {i}\n\n{_tidy_pdf_text(p)}" for i, p in enumerate(pages, 1) if p.strip())
    return {"title": title, "date": date}, text


def _pdf_date(raw: str) -> str:
    match = re.match(r"D:(\d{4})(\d{2})(\d{2})", raw)
    return f"{match.group(1)}-{match.group(2)}-{match.group(3)}" if match else ""


def _tidy_pdf_text(text: str) -> str:
    text = re.sub(r"-\n(?=[a-zà-ÿ])", "", text)  # words hyphenated across lines
    return re.sub(r"[ \t]+", " ", text).strip()
