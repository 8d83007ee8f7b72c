"""The town's sources kept fresh (``guichet sync``): a DILA archive built from real fiches, a website served by a
local HTTP server the test starts (sitemap, ETags, robots.txt, a slow page, a broken one, a linked PDF), and the
index updated from them with the fake embedder."""

from __future__ import annotations

import hashlib
import io
import re
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bot.engines.embedder import FakeEmbedder
from bot.engines.index import Index
from bot.errors import ConfigError
from ingestion.builder import build
from ingestion.sources import STATE, Source, load_sources, roots_of, sync_sources
from ingestion.website import sync_website
from tests.conftest import SHARED, write
from tools.make_demo_pdf import build as demo_pdf

FICHES = sorted((SHARED / "service-public-fiches-vdd" / "particuliers").glob("F*.xml"))[:12]


def archive(fiches: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for name, body in fiches.items():
            out.writestr(name, body)
    return buffer.getvalue()


def fiches_as_published() -> dict[str, bytes]:
    return {f"particuliers/{path.name}": path.read_bytes() for path in FICHES}


def updated(body: bytes, sentence: str) -> bytes:
    """The fiche republished: a new modification date and a new first paragraph."""
    body = re.sub(rb"<dc:date>[^<]*</dc:date>", b"<dc:date>modified 2026-11-30</dc:date>", body, count=1)
    return body.replace(b"<Introduction>", f"<Introduction><Paragraphe>{sentence}</Paragraphe>".encode(), 1)


def dila(tmp_path, fiches: dict[str, bytes], **options) -> Source:
    path = tmp_path / "vosdroits.zip"
    path.write_bytes(archive(fiches))
    return Source("fiches", "dila", str(path), options)


def no_network(url: str) -> bytes:
    raise AssertionError(f"no download expected: {url}")


def test_a_dila_archive_is_mirrored_and_only_changed_fiches_are_rewritten(tmp_path):
    assert len(FICHES) == 12, "the shared corpora are beside the repository"
    sources_dir, mirror_dir = tmp_path / "sources", tmp_path / "sources" / "fiches"
    sources = [dila(tmp_path, fiches_as_published())]
    [first] = sync_sources(sources, sources_dir, no_network)
    assert (first.status, first.added, first.changed) == ("updated", 12, 0)
    [same] = sync_sources(sources, sources_dir, no_network)
    assert (same.status, same.unchanged, same.not_fetched) == ("unchanged", 12, 12)

    published = fiches_as_published()
    changed, removed = sorted(published)[0], sorted(published)[1]
    published[changed] = updated(published[changed], "Nouveauté : la démarche se fait désormais en ligne.")
    del published[removed]
    stamp = (mirror_dir / sorted(published)[-1]).stat().st_mtime_ns
    [report] = sync_sources([dila(tmp_path, published)], tmp_path / "sources", no_network)
    assert (report.status, report.changed, report.removed, report.unchanged) == ("updated", 1, 1, 10)
    assert b"Nouveaut" in (mirror_dir / changed).read_bytes() and not (mirror_dir / removed).exists()
    assert (mirror_dir / sorted(published)[-1]).stat().st_mtime_ns == stamp  # an unchanged fiche is not rewritten


@pytest.mark.parametrize("damage", ["truncated", "no fiche", "bad xml", "sha256", "outside", "missing"])
def test_a_bad_archive_fails_its_source_and_keeps_the_last_good_fiches(tmp_path, damage):
    sources_dir = tmp_path / "sources"
    [good] = sync_sources([dila(tmp_path, fiches_as_published())], sources_dir, no_network)
    assert good.added == 12
    before = {p.name: p.read_bytes() for p in (sources_dir / "fiches").rglob("*.xml")}
    published = fiches_as_published()
    first = sorted(published)[0]
    published[first] = updated(published[first], "Nouveauté qui ne doit pas arriver.")
    source = dila(tmp_path, published)
    path = source.location
    if damage == "truncated":
        data = archive(published)
        write_bytes(path, data[: len(data) // 2])
    elif damage == "no fiche":
        write_bytes(path, archive({"lisez-moi.txt": b"vide"}))
    elif damage == "bad xml":
        write_bytes(path, archive(published | {"particuliers/F0.xml": b"<Publication><dc:title>x</Publication"}))
    elif damage == "sha256":
        source = Source("fiches", "dila", path, {"sha256": hashlib.sha256(b"another archive").hexdigest()})
    elif damage == "outside":
        outside = {"../../etc/F1.xml": published[first]}
        write_bytes(path, archive({**published, **outside}))  # checked before any good fiche is rewritten
    else:
        source = Source("fiches", "dila", str(tmp_path / "absent.zip"))
    [report] = sync_sources([source], sources_dir, no_network)
    assert report.status == "failed" and report.error
    assert {p.name: p.read_bytes() for p in (sources_dir / "fiches").rglob("*.xml")} == before
    assert not (tmp_path / "etc").exists()


def write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)


def test_the_sources_file_names_what_is_wrong(tmp_path):
    good = write(
        tmp_path / "sources.yaml",
        "sources:\n  - {name: fiches, kind: dila, path: vosdroits.zip}\n"
        "  - {name: site, kind: website, url: 'http://127.0.0.1/sitemap.xml', delay_seconds: 0}\n"
        "  - {name: docs, kind: folder, path: docs}\n",
    )
    fiches, site, docs = load_sources(good)
    assert fiches.location == str(tmp_path / "vosdroits.zip") and site.options == {"delay_seconds": 0}
    assert docs.kind == "folder" and site.is_url
    for text, complaint in [
        ("sources: []", "list of sources"),
        ("sources:\n  - {name: Fiches Nationales, kind: dila, path: a.zip}", "lower case"),
        ("sources:\n  - {name: a, kind: ftp, path: a.zip}", "one of dila, website, folder"),
        ("sources:\n  - {name: a, kind: website, path: site}", "'url' of its sitemap"),
        ("sources:\n  - {name: a, kind: dila}", "give 'path'"),
        ("sources:\n  - {name: a, kind: folder, path: x}\n  - {name: a, kind: folder, path: y}", "unique"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(complaint)):
            load_sources(write(tmp_path / "bad.yaml", text))


# ---------------------------------------------------------------------------------------------------------------
# A town's website, served locally.

PAGE = """<html><head><title>{title} - Valbourg</title></head><body>
<nav><a href="/">Accueil</a> Menu du site</nav>
<main><h1>{title}</h1><p>{text}</p>{extra}</main>
<footer>Mairie de Valbourg, tous droits réservés</footer></body></html>"""


class Site:
    """A small town site whose pages the test changes; it records every request it serves."""

    def __init__(self):
        self.pages = {
            "/etat-civil": ("État civil", "Les actes d'état civil se demandent en ligne ou au guichet de la mairie."),
            "/piscine": ("Piscine", "La piscine municipale ouvre du mardi au dimanche de 10 h à 19 h en été."),
            "/prive/agents": ("Intranet", "Planning interne des agents de la mairie, à ne pas publier."),
            "/lent": ("Page lente", "Cette page met trop longtemps à répondre."),
            "/casse": ("Page cassée", "Cette page répond par une erreur du serveur."),
        }
        self.modified = dict.fromkeys(self.pages, "Mon, 02 Nov 2026 10:00:00 GMT")
        self.broken, self.slow = {"/casse"}, {"/lent"}
        self.robots = "User-agent: *\nDisallow: /prive/\n"
        self.robots_status = 200
        self.pdf = demo_pdf()
        self.requests: list[tuple[str, int]] = []
        self.listed = ["/etat-civil", "/piscine", "/prive/agents", "/lent", "/casse"]

    def etag(self, path: str) -> str:
        body = self.body(path)
        return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    def body(self, path: str) -> bytes:
        if path == "/docs/tarifs.pdf":
            return self.pdf
        title, text = self.pages[path]
        extra = '<p><a href="/docs/tarifs.pdf">Tarifs (PDF)</a></p>' if path == "/piscine" else ""
        return PAGE.format(title=title, text=text, extra=extra).encode()

    def handler(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_):
                pass

            def do_GET(self):  # noqa: N802 - the standard library's name
                status, headers, body = site.respond(self.path, self.headers)
                site.requests.append((self.path, "too late" if self.path in site.slow else status))
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on a slow page

        return Handler

    def respond(self, path, headers):
        host = f"http://{headers['Host']}"
        if path == "/robots.txt":
            return self.robots_status, {"Content-Type": "text/plain"}, self.robots.encode()
        if path == "/sitemap.xml":
            index = f"<sitemap><loc>{host}/sitemap-pages.xml</loc></sitemap>"
            body = f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{index}</sitemapindex>'
            return 200, {"Content-Type": "application/xml"}, body.encode()
        if path == "/sitemap-pages.xml":
            urls = "".join(f"<url><loc>{host}{p}</loc><lastmod>2026-10-01</lastmod></url>" for p in self.listed)
            urls += "<url><loc>http://ailleurs.example/page</loc></url>"  # another site: never fetched
            urls += "<url><loc>http://[cassé/page</loc></url>"  # not a URL: skipped
            body = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
            return 200, {"Content-Type": "application/xml"}, body.encode()
        if path in self.slow:
            time.sleep(1.5)
        if path in self.broken:
            return 500, {"Content-Type": "text/plain"}, b"erreur"
        if path not in self.pages and path != "/docs/tarifs.pdf":
            return 404, {"Content-Type": "text/plain"}, b"introuvable"
        etag = self.etag(path)
        if headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, b""
        kind = "application/pdf" if path.endswith(".pdf") else "text/html; charset=utf-8"
        modified = self.modified.get(path, "Sun, 01 Nov 2026 09:00:00 GMT")
        return 200, {"Content-Type": kind, "ETag": etag, "Last-Modified": modified}, self.body(path)


@pytest.fixture
def site():
    served = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), served.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.base = f"http://127.0.0.1:{server.server_port}"
    yield served
    server.shutdown()
    server.server_close()


def crawl(site, sources_dir):
    source = Source("site", "website", f"{site.base}/sitemap.xml", {"delay_seconds": 0})
    with httpx.Client(timeout=1.0) as client:
        [report] = sync_sources([source], sources_dir, no_network, lambda s, m: sync_website(s, m, client))
    return report


def fetched(site) -> list[str]:
    """The paths served with a body (200) since the last call."""
    paths = [p for p, status in site.requests if status == 200 and not p.startswith(("/robots", "/sitemap"))]
    site.requests.clear()
    return sorted(paths)


def test_a_website_is_crawled_politely_and_unchanged_pages_are_not_fetched_again(site, tmp_path):
    sources_dir = tmp_path / "sources"
    first = crawl(site, sources_dir)
    assert first.status == "updated" and first.added == 3  # two pages and the PDF one of them links to
    assert fetched(site) == ["/docs/tarifs.pdf", "/etat-civil", "/piscine"]
    assert not any(p.startswith("/prive") for p, _ in site.requests)  # robots.txt forbids it: never asked
    assert any("/lent" in p for p in first.problems) and any("/casse" in p and "500" in p for p in first.problems)
    page = (sources_dir / "site" / "piscine.md").read_text()
    assert f"url: {site.base}/piscine" in page and "date: '2026-11-02'" in page and "10 h à 19 h" in page
    assert "Menu du site" not in page and "tous droits réservés" not in page  # the main text only

    again = crawl(site, sources_dir)
    assert (again.status, again.not_fetched) == ("unchanged", 3)
    assert fetched(site) == []  # every page answered 304: nothing downloaded again

    site.pages["/piscine"] = ("Piscine", "La piscine municipale ferme pour travaux jusqu'au 15 janvier 2027.")
    site.modified["/piscine"] = "Mon, 30 Nov 2026 08:00:00 GMT"
    site.listed.remove("/etat-civil")
    site.broken, site.slow = set(), set()
    third = crawl(site, sources_dir)
    assert (third.changed, third.removed, third.added) == (1, 1, 2)  # the slow and the broken page now answer
    assert "travaux" in (sources_dir / "site" / "piscine.md").read_text()
    assert not (sources_dir / "site" / "etat-civil.md").exists()


def test_a_page_that_breaks_keeps_its_last_content_and_an_unreadable_robots_stops_the_crawl(site, tmp_path):
    sources_dir = tmp_path / "sources"
    crawl(site, sources_dir)
    site.broken.add("/piscine")
    broken = crawl(site, sources_dir)
    assert broken.status == "unchanged", broken
    assert any("/piscine" in p for p in broken.problems)
    assert "10 h à 19 h" in (sources_dir / "site" / "piscine.md").read_text()
    site.robots_status = 503
    fetched(site)
    refused = crawl(site, sources_dir)
    assert refused.status == "failed" and "robots.txt" in refused.error
    assert fetched(site) == [] and (sources_dir / "site" / "piscine.md").exists()
    state = (sources_dir / "site" / STATE).read_text()
    assert "piscine" in state


def test_the_index_follows_the_sources_and_cites_the_live_page(site, tmp_path):
    """A fiche updated in the archive is indexed from its new text within one sync; a page keeps its URL."""
    sources_dir, index_dir = tmp_path / "sources", tmp_path / "index"
    published = fiches_as_published()
    sources = [dila(tmp_path, published), Source("site", "website", f"{site.base}/sitemap.xml", {"delay_seconds": 0})]
    embedder = FakeEmbedder()

    def sync_and_index():
        with httpx.Client(timeout=1.0) as client:
            sync_sources(sources, sources_dir, no_network, lambda s, m: sync_website(s, m, client))
        return build(roots_of(sources, sources_dir), index_dir, embedder)

    first = sync_and_index()
    chunks = Index.open(index_dir).chunks
    piscine = [c for c in chunks if c.source.endswith("piscine.md")]
    assert piscine and piscine[0].url == f"{site.base}/piscine" and piscine[0].date == "2026-11-02"
    name = sorted(published)[0]
    published[name] = updated(published[name], "Nouveauté : la démarche se fait désormais en ligne.")
    sources[0] = dila(tmp_path, published)
    second = sync_and_index()
    assert second.embedded < first.embedded / 4  # only the changed fiche's passages are embedded again
    assert any("Nouveauté" in c.text for c in Index.open(index_dir).chunks if c.source.endswith(name))
