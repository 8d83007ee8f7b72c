"""A town's website as a source: its sitemap, read politely, each page's main text kept with its URL.

- robots.txt is honoured (RFC 9309: a missing one allows everything; one that cannot be read forbids everything,
  so the source fails and keeps its last content), and its ``Crawl-delay`` if longer than the source's ``delay``;
- one request at a time, ``delay_seconds`` apart; only the sitemap's host;
- conditional requests (``If-None-Match`` / ``If-Modified-Since`` from the last fetch): an unchanged page is not
  downloaded again, so neither read nor embedded again;
- the main text is extracted by trafilatura (menus, footers and cookie banners left out), tables kept;
- PDFs linked from a page on the same site are followed (read as the ingestion reads PDFs);
- each document is written as Markdown whose front matter holds its title, URL and date (``Last-Modified``, or
  the sitemap's ``lastmod``), so a citation links to the live page and the answer can say how old it is.

A page that fails (a 500, a timeout) keeps its last content and is listed; one that is gone (404, 410) or left the
sitemap is removed.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx
import yaml
from lxml import etree, html

from ingestion.loaders import DEFAULT_LIMITS, FRONT_MATTER, Unusable, read_pdf
from ingestion.sources import Fetched, Mirror, Source, SourceFailed, SourceReport, fetched

AGENT = "Guichet"  # the name robots.txt rules are read for
USER_AGENT = "Guichet/1.0 (assistant municipal; +robots.txt honoured)"
DEFAULT_DELAY_SECONDS = 1.0
DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_MAX_PAGES = 1000
MAX_BYTES = 20_000_000
MAX_SITEMAPS = 50
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
GONE = (404, 410)


class Polite:
    """One client, one request at a time, ``delay`` seconds apart; bodies capped at ``MAX_BYTES``."""

    def __init__(self, client: httpx.Client, delay: float, sleep: Callable[[float], None] = time.sleep):
        self.client, self.delay, self.sleep = client, delay, sleep
        self.last = -1e9

    def get(self, url: str, headers: dict[str, str] | None = None) -> Fetched:
        wait = self.last + self.delay - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        try:
            return fetched(self.client, url, {"User-Agent": USER_AGENT, **(headers or {})}, MAX_BYTES)
        finally:
            self.last = time.monotonic()


def sync_website(source: Source, mirror: Mirror, client: httpx.Client, sleep=time.sleep) -> SourceReport:
    """Bring the mirror to the site's sitemap (see the module's docstring)."""
    report = SourceReport(source.name, source.kind)
    delay = float(source.options.get("delay_seconds", DEFAULT_DELAY_SECONDS))
    web = Polite(client, delay, sleep)
    host = urlsplit(source.location).netloc
    robots = _robots(web, source.location)
    web.delay = max(delay, float(robots.crawl_delay(AGENT) or 0))
    listed = _sitemap(web, source.location, host)
    pages = [(url, lastmod) for url, lastmod in listed if robots.can_fetch(AGENT, url)]
    pages = pages[: int(source.options.get("max_pages", DEFAULT_MAX_PAGES))]
    kept: set[str] = set()
    for url, lastmod in pages:
        outcome, links = _document(web, mirror, url, lastmod, report)
        if outcome != "gone":
            kept.add(url)
        for pdf in links:
            followed = pdf not in kept and urlsplit(pdf).netloc == host and robots.can_fetch(AGENT, pdf)
            if followed and _document(web, mirror, pdf, "", report)[0] != "gone":
                kept.add(pdf)
    for gone in sorted(relative for relative, seen in mirror.state.items() if seen.get("url") not in kept):
        mirror.remove(gone)
        report.removed += 1
    report.status = "updated" if report.added or report.changed or report.removed else "unchanged"
    return report


def _robots(web: Polite, sitemap_url: str) -> RobotFileParser:
    parts = urlsplit(sitemap_url)
    robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
    rules = RobotFileParser(robots_url)
    try:
        response = web.get(robots_url)
    except httpx.HTTPError as exc:
        raise SourceFailed(f"robots.txt unreachable ({type(exc).__name__}): nothing fetched") from None
    if response.status >= 500:
        raise SourceFailed(f"robots.txt answered {response.status}: nothing fetched")
    rules.parse(response.text.splitlines() if response.status == 200 else [])
    return rules


def _sitemap(web: Polite, url: str, host: str) -> list[tuple[str, str]]:
    """(page URL, lastmod) of the sitemap, nested sitemaps followed (same host, at most ``MAX_SITEMAPS``)."""
    found: dict[str, str] = {}
    todo, seen = [url], set()
    while todo and len(seen) < MAX_SITEMAPS:
        current = todo.pop(0)
        seen.add(current)
        try:
            response = web.get(current)
        except httpx.HTTPError as exc:
            raise SourceFailed(f"sitemap {current} unreachable ({type(exc).__name__})") from None
        if response.status != 200:
            raise SourceFailed(f"sitemap {current} answered {response.status}")
        try:
            root = etree.fromstring(response.content, parser=etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as exc:
            raise SourceFailed(f"sitemap {current} is not valid XML ({exc})") from None
        for entry in root.iter(f"{SITEMAP}sitemap", f"{SITEMAP}url"):
            loc = (entry.findtext(f"{SITEMAP}loc") or "").strip()
            try:
                if urlsplit(loc).netloc != host:
                    continue  # another site's page (or no URL at all)
            except ValueError:
                continue  # not a URL ("http://[broken"): the rest of the sitemap is read
            if entry.tag == f"{SITEMAP}sitemap":
                if loc not in seen:
                    todo.append(loc)
            else:
                found.setdefault(loc, (entry.findtext(f"{SITEMAP}lastmod") or "").strip()[:10])
    if not found:
        raise SourceFailed(f"sitemap {url} lists no page of {host}")
    return list(found.items())


def _document(web: Polite, mirror: Mirror, url: str, lastmod: str, report: SourceReport) -> tuple[str, list[str]]:
    """Fetch one page or PDF if it changed; returns (kept | gone | failed, the PDFs it links to)."""
    relative = _file_for(url)
    before = mirror.state.get(relative, {})
    last_links = list(before.get("pdfs", []))  # a page not read again still links to them
    headers = {}
    if before.get("etag"):
        headers["If-None-Match"] = before["etag"]
    if before.get("last_modified"):
        headers["If-Modified-Since"] = before["last_modified"]
    try:
        response = web.get(url, headers)
    except (httpx.HTTPError, httpx.InvalidURL, SourceFailed) as exc:
        why = str(exc) if isinstance(exc, SourceFailed) else type(exc).__name__
        report.problems.append(f"{url}: {why}; last content kept")
        return "failed", last_links
    if response.status == 304 and before:
        report.unchanged += 1
        report.not_fetched += 1
        return "kept", last_links
    if response.status in GONE:
        return "gone", []
    if response.status != 200:
        report.problems.append(f"{url}: HTTP {response.status}; last content kept")
        return "failed", last_links
    try:
        meta, text, pdfs = _read(url, response)
    except Unusable as exc:
        report.problems.append(f"{url}: {exc}")
        return "failed", last_links
    date = _http_date(response.headers.get("Last-Modified", "")) or lastmod or meta.get("date", "")
    document = _markdown({"title": meta.get("title", ""), "url": url, "date": date}, text)
    digest = hashlib.sha256(document).hexdigest()
    if before.get("sha256") != digest:
        mirror.write(relative, document)
        if before:
            report.changed += 1
        else:
            report.added += 1
    else:
        report.unchanged += 1
    mirror.state[relative] = {
        "url": url,
        "sha256": digest,
        "etag": response.headers.get("ETag", ""),
        "last_modified": response.headers.get("Last-Modified", ""),
        "pdfs": pdfs,
    }
    return "kept", pdfs


def _read(url: str, response: Fetched) -> tuple[dict[str, Any], str, list[str]]:
    """(title and date, Markdown text, the PDFs linked) of an HTML page or a PDF."""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind == "application/pdf" or response.content[:5] == b"%PDF-":
        meta, text = read_pdf(response.content, DEFAULT_LIMITS, [])
        return meta, text, []
    if kind not in ("text/html", "application/xhtml+xml", ""):
        raise Unusable(f"type {kind} not read")
    import trafilatura

    # favor_precision: on a short page the default falls back to the whole body, menus and footer included
    extracted = (
        trafilatura.extract(
            response.text,
            url=url,
            output_format="markdown",
            include_tables=True,
            favor_precision=True,
            with_metadata=True,  # its own front matter: the page's title and date, read here in the same pass
        )
        or ""
    )
    front = FRONT_MATTER.match(extracted)
    text = extracted[front.end() :] if front else extracted
    if not text.strip():
        raise Unusable("no main text found on the page")
    try:
        meta = yaml.safe_load(front.group(1)) if front else {}
    except yaml.YAMLError:
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    return {k: str(meta.get(k) or "") for k in ("title", "date")}, text, _pdf_links(url, response.text)


def _pdf_links(url: str, page: str) -> list[str]:
    try:
        tree = html.fromstring(page)
    except (etree.ParserError, ValueError):
        return []
    links = (urljoin(url, href).split("#")[0] for href in tree.xpath("//a/@href"))
    return sorted({link for link in links if urlsplit(link).path.lower().endswith(".pdf")})


def _markdown(meta: dict[str, str], text: str) -> bytes:
    front = yaml.safe_dump({k: v for k, v in meta.items() if v}, allow_unicode=True, sort_keys=False)
    return f"---\n{front}---\n\n{text.strip()}\n".encode()


def _http_date(value: str) -> str:
    try:
        return parsedate_to_datetime(value).date().isoformat() if value else ""
    except (TypeError, ValueError):
        return ""


def _file_for(url: str) -> str:
    """Where a URL's document lives in the mirror: its path, made a safe file name (``/etat-civil/`` →
    ``etat-civil.md``; a query string adds a short hash)."""
    parts = urlsplit(url)
    path = re.sub(r"[^a-z0-9._/-]+", "-", parts.path.lower()).strip("/") or "index"
    path = "/".join(p.strip(".-") or "_" for p in path.split("/"))
    if parts.query:
        path += "-" + hashlib.sha256(parts.query.encode()).hexdigest()[:8]
    return path + ".md"
