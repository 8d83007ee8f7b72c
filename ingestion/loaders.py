"""Read one file of any supported format into a ``SourceDocument`` (Markdown text plus metadata).

Every loader returns Markdown so a single heading-aware chunker serves all formats. A file that cannot be
used raises ``Unusable`` with a French-free, developer-facing reason that the ingestion report lists; what was
read with a caveat (a guessed encoding, pages without text, bad front matter) is a note on the document.
Files are untrusted: each has a size cap, and PDFs are parsed in a child process with a time and memory limit.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import charset_normalizer
import yaml
from bs4 import BeautifulSoup, NavigableString
from pypdf import PdfReader

from bot.text import fold_accents
from ingestion import dila
from ingestion.isolation import Overrun, run_isolated

SUPPORTED = {".md", ".markdown", ".html", ".htm", ".pdf", ".txt", ".xml"}
WIDE_ENCODINGS = ["utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be"]
SINGLE_BYTE_ENCODINGS = ["cp1252", "iso8859_15", "latin_1", "mac_roman", "cp850"]
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)
# A header row, a |---|---| separator row, then body rows.
PIPE_TABLE = re.compile(r"^\|.*\|[ \t]*\n\|[ \t:|-]+\|[ \t]*\n(?:\|.*\|[ \t]*(?:\n|\Z))*", re.M)
BLOCKS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "table", "dt", "dd", "address"]
CONTAINERS = ["div", "section", "article", "main", "aside", "blockquote", "figure", "figcaption", "body"]
# Below this many characters of text per page, a PDF is taken to be a scan that needs OCR.
MIN_PDF_CHARS_PER_PAGE = 40


class Unusable(Exception):
    """This file cannot be ingested; the message says why (listed in the ingestion report under ``kind``)."""

    def __init__(self, message: str, kind: str = "unusable"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Limits:
    """What one untrusted file may cost the build."""

    max_file_bytes: int = 20_000_000
    pdf_seconds: float = 60.0
    pdf_max_pages: int = 1000
    parser_memory_bytes: int = 2_000_000_000


@dataclass
class SourceDocument:
    """One document of the corpus, as the chunker sees it."""

    source: str  # path relative to the ingested root, with forward slashes
    title: str
    url: str
    date: str
    markdown: str
    notes: list[str] = field(default_factory=list)  # read, with a caveat the ingestion report lists


DEFAULT_LIMITS = Limits()


def load(path: Path, root: Path, limits: Limits = DEFAULT_LIMITS) -> SourceDocument:
    """Load ``path`` (inside ``root``) with the loader for its extension."""
    suffix, status = path.suffix.lower(), path.stat()
    size = status.st_size
    if size > limits.max_file_bytes:
        cap = limits.max_file_bytes / 1e6
        raise Unusable(f"file is {size / 1e6:.1f} MB, over the {cap:g} MB limit per file", kind="too_large")
    data = path.read_bytes()
    if not data.strip():
        raise Unusable("empty file", kind="empty")
    notes: list[str] = []
    if suffix in (".md", ".markdown"):
        meta, text = _markdown(_decode(data, notes), notes)
    elif suffix in (".html", ".htm"):
        meta, text = _html(data)
    elif suffix == ".pdf":
        meta, text = read_pdf(data, limits, notes)
    elif suffix == ".xml":
        if not dila.is_dila_fiche(data[:4096]):
            raise Unusable("XML file is not a Service-Public.fr fiche (no <Publication> root)")
        fiche = dila.parse_fiche(data)
        meta, text = {k: fiche[k] for k in ("title", "url", "date")}, fiche["markdown"]
    elif suffix == ".txt":
        meta, text = {}, _decode(data, notes)
    else:
        raise Unusable(f"unsupported file type {suffix}", kind="unsupported")
    if not text.strip():
        raise Unusable("no text content", kind="empty")
    source = path.relative_to(root).as_posix()
    title = meta.get("title") or _first_heading(text) or path.stem.replace("-", " ").replace("_", " ")
    date = meta.get("date") or datetime.fromtimestamp(status.st_mtime, UTC).date().isoformat()
    year = tariff_year(f"{title} {path.stem}", text[:TARIFF_YEAR_CHARS])
    if year and str(date)[:4] < str(year):  # tariffs voted in December for the next year are that year's
        date = f"{year}-01-01"
    return SourceDocument(
        source=source, title=title.strip(), url=meta.get("url", ""), date=str(date), markdown=text.strip(), notes=notes
    )


def _decode(data: bytes, notes: list[str]) -> str:
    """UTF-8 (with or without BOM); otherwise the encoding charset-normalizer finds, said in a note.

    >>> notes = []
    >>> _decode("Mairie d'Étréchy".encode("utf-16"), notes), notes
    ("Mairie d'Étréchy", ['not UTF-8: read as utf_16'])
    """
    try:
        text = data.decode("utf-8-sig")
        if "\x00" not in text:  # UTF-16 without a BOM is valid UTF-8 full of NULs
            return _unix_newlines(text)
    except UnicodeDecodeError:
        pass
    # Text without NUL bytes is not UTF-16/32: the candidates are the single-byte encodings French files use.
    wide = b"\x00" in data
    best = charset_normalizer.from_bytes(data, cp_isolation=WIDE_ENCODINGS if wide else SINGLE_BYTE_ENCODINGS).best()
    if best is None:
        raise Unusable("text encoding not recognised: save the file as UTF-8", kind="bad_encoding")
    notes.append(f"not UTF-8: read as {best.encoding}")
    return _unix_newlines(str(best))


def _unix_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _first_heading(text: str) -> str:
    match = re.search(r"^#\s+(.+)$", text, re.M)
    return match.group(1) if match else ""


TARIFF_YEAR = re.compile(r"\btarifs?\b[^\n]{0,40}?\b(20\d\d)\b(?![,.]?\d|\s*(?:€|euros?\b))")
TARIFF_YEAR_CHARS = 1500  # the title page or first lines name the year a tariff applies to


def tariff_year(title: str, opening: str) -> int | None:
    """The year a tariff document applies to, read from its title or file name, else its first lines.

    >>> tariff_year("DCM VilleMTP_MTP_Tarifs_2014", "")
    2014
    >>> tariff_year("Conseil municipal", "Objet : tarifs municipaux applicables au 1er janvier 2025")
    2025
    >>> tariff_year("Piscine", "Ouverte en 2025") is None, tariff_year("Tarif", "Le tarif est de 2025 €.") is None
    (True, True)
    """
    for text in (title, opening):
        found = TARIFF_YEAR.search(fold_accents(text.replace("_", " ")).lower())
        if found:
            return int(found.group(1))
    return None


def _markdown(text: str, notes: list[str]) -> tuple[dict, str]:
    """Markdown with optional YAML front matter (title, url, date).

    >>> _markdown("---\\ntitle: 'Marché : horaires'\\ndate: 2026-10-02\\n---\\nLe samedi.", [])
    ({'title': 'Marché : horaires', 'date': '2026-10-02'}, 'Le samedi.')
    """
    meta: dict = {}
    match = FRONT_MATTER.match(text)
    if match:
        text = text[match.end() :]
        try:
            parsed = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            parsed, problem = None, str(getattr(exc, "problem", None) or exc).strip()
        else:
            problem = "" if isinstance(parsed, dict) or parsed is None else "it is not a list of key: value"
        if problem:  # e.g. "title: Cimetière : tarifs" unquoted; each line is still read as "key: value"
            notes.append(f"front matter is not valid YAML ({problem}): read line by line; quote values with ': '")
            parsed = dict(line.split(":", 1) for line in match.group(1).splitlines() if ":" in line)
        for key, value in (parsed if isinstance(parsed, dict) else {}).items():
            if value is not None and not isinstance(value, dict | list):
                meta[str(key).strip().lower()] = str(value).strip().strip("'\"")
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
    loose: list[str] = []  # text outside any block element (a page laid out with bare <div>s)
    loose_in = None
    # One pass in document order, without recursion: a page nested thousands of tags deep is read like any other.
    for node in body.descendants:
        if isinstance(node, NavigableString):
            if type(node) is NavigableString and node.strip() and node.find_parent(BLOCKS) is None:
                container = node.find_parent(CONTAINERS)
                if loose and container is not loose_in:
                    blocks.append(" ".join(loose))
                    loose = []
                loose.append(" ".join(node.split()))
                loose_in = container
            continue
        if node.name not in BLOCKS or (node.name != "table" and node.find_parent(["table", "li"])):
            continue  # not a block, or rendered with its table or list item
        if loose:
            blocks.append(" ".join(loose))
            loose = []
        text = " ".join(node.get_text(" ", strip=True).split())
        if node.name == "table":
            blocks.append(_html_table(node))
        elif not text:
            continue
        elif node.name[0] == "h":
            blocks.append(f"{'#' * int(node.name[1])} {text}")
        elif node.name == "li":
            blocks.append(f"- {text}")
        else:
            blocks.append(text)
    if loose:
        blocks.append(" ".join(loose))
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


def read_pdf(data: bytes, limits: Limits, notes: list[str]) -> tuple[dict, str]:
    """PDF text layer, one section per page; a PDF without text is reported as needing OCR, pages without text
    in a PDF that has some are named in a note."""
    try:
        parse = functools.partial(_pdf_pages, max_pages=limits.pdf_max_pages)
        meta, pages, total = run_isolated(parse, data, limits.pdf_seconds, limits.parser_memory_bytes)
    except Overrun as exc:
        raise Unusable(f"PDF not read: {exc}", kind="over_limit") from None
    chars = sum(len(p.strip()) for p in pages)
    if not pages or chars < MIN_PDF_CHARS_PER_PAGE * len(pages) / 4:
        raise Unusable("PDF has no text layer (scanned image): it needs OCR before ingestion", kind="needs_ocr")
    if total > len(pages):
        notes.append(f"only the first {len(pages)} of its {total} pages were read")
    scanned = [str(i) for i, p in enumerate(pages, 1) if len(p.strip()) < MIN_PDF_CHARS_PER_PAGE]
    if scanned:
        notes.append(f"page(s) {', '.join(scanned)} of {len(pages)} have no text layer (scanned?): they need OCR")
    text = "\n\n".join(f"## Page {i}\n\n{_tidy_pdf_text(p)}" for i, p in enumerate(pages, 1) if p.strip())
    return meta, text


def _pdf_pages(data: bytes, max_pages: int) -> tuple[dict, list[str], int]:
    """In the child process: metadata, the text of the first ``max_pages`` pages, and the page count."""
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages[:max_pages]]
        info = reader.metadata or {}
        meta = {
            "title": str(info.get("/Title") or "").strip(),
            "date": _pdf_date(str(info.get("/ModDate") or info.get("/CreationDate") or "")),
        }
        return meta, pages, len(reader.pages)
    except Exception as exc:  # pypdf raises many types for damaged files
        raise Unusable(f"unreadable PDF ({type(exc).__name__}: {exc})") from None


def _pdf_date(raw: str) -> str:
    match = re.match(r"D:(\d{4})(\d{2})(\d{2})", raw)
    return f"{match.group(1)}-{match.group(2)}-{match.group(3)}" if match else ""


def _tidy_pdf_text(text: str) -> str:
    text = re.sub(r"-\n(?=[a-zà-ÿ])", "", text)  # words hyphenated across lines
    return re.sub(r"[ \t]+", " ", text).strip()
