"""A corpus of hostile files: the build finishes, reports each one, and the index still answers."""

import io
import time
import zlib

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject, StreamObject

from bot.engines.embedder import FakeEmbedder
from bot.engines.index import Index
from ingestion.builder import build
from ingestion.isolation import Overrun, run_isolated
from ingestion.loaders import Limits
from tests.conftest import write
from tools.make_demo_pdf import build as demo_pdf

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE Publication [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Publication ID="F1"><dc:title xmlns:dc="http://purl.org/dc/elements/1.1/">&lol9;</dc:title>
<Texte><Paragraphe>&lol9;</Paragraphe></Texte></Publication>
"""


def bomb_pdf(decompressed_mb: int = 200) -> bytes:
    """One page whose content stream inflates from a few hundred kB to ``decompressed_mb`` MB."""
    packer, chunk = zlib.compressobj(9), b" " * 1_000_000
    data = b"".join(packer.compress(chunk) for _ in range(decompressed_mb)) + packer.flush()
    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    stream = StreamObject()
    stream._data = data
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def mostly_scanned_pdf() -> bytes:
    """A page with a text layer, then three pages without (as a scanner makes them)."""
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(demo_pdf())))
    for _ in range(3):
        writer.add_blank_page(612, 792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def loops_forever(data: bytes) -> None:
    while True:
        time.sleep(0.01)


def allocates_without_end(data: bytes) -> None:
    hoard = []
    while True:
        hoard.append(bytearray(50_000_000))


def test_a_parser_that_never_ends_is_stopped_at_its_time_limit():
    started = time.monotonic()
    with pytest.raises(Overrun, match="more than 1 s"):
        run_isolated(loops_forever, b"", seconds=1, max_memory_bytes=1_000_000_000)
    assert time.monotonic() - started < 30  # stopped, not waited for


def test_a_parser_that_eats_memory_is_stopped_at_its_memory_limit():
    with pytest.raises(Overrun, match="memory"):
        run_isolated(allocates_without_end, b"", seconds=60, max_memory_bytes=500_000_000)


def test_a_corpus_of_hostile_files_is_reported_and_the_index_answers(tmp_path):
    corpus = tmp_path / "corpus"
    write(corpus / "horaires.md", "# Horaires de la mairie\n\nLa mairie ouvre du lundi au vendredi de 9 h à 12 h.\n")
    write(corpus / "bombe.pdf", bomb_pdf())
    write(corpus / "scanne.pdf", mostly_scanned_pdf())
    write(corpus / "enorme.txt", b"a" * 50_000_000)
    write(corpus / "utf16.txt", "Le marché a lieu le samedi matin, place de l'Église.".encode("utf-16"))
    write(corpus / "latin1.md", "# Piscine\n\nLa piscine est fermée en août pour vidange.".encode("latin-1"))
    write(corpus / "crlf.md", "---\r\ntitle: Cantine\r\nurl: https://x.fr/cantine\r\n---\r\nRepas à 2 €.\r\n")
    nested = "<div>" * 10_000 + "Le cimetière ouvre à 8 h." + "</div>" * 10_000
    write(corpus / "profond.html", f"<html><body><script>alert('x')</script>{nested}</body></html>")
    write(corpus / "entites.xml", BILLION_LAUGHS)
    (corpus / "boucle-a.md").symlink_to(corpus / "boucle-b.md")
    (corpus / "boucle-b.md").symlink_to(corpus / "boucle-a.md")
    vanishing = write(corpus / "zz-disparu.md", "# Disparu\n\nCe fichier est supprimé pendant la construction.")

    def progress(stage, done, total):
        if stage == "Lecture des documents" and done == 1:
            vanishing.unlink()  # a file deleted while the build reads the corpus

    limits = Limits(pdf_seconds=30, parser_memory_bytes=1_000_000_000)
    report = build([corpus], tmp_path / "index", FakeEmbedder(), progress=progress, limits=limits)

    problems = {p["source"]: p["problem"] for p in report.problems}
    assert problems["enorme.txt"] == "too_large"
    assert problems["bombe.pdf"] in ("unusable", "over_limit", "needs_ocr")
    assert problems["entites.xml"] == "unreadable"  # libxml2 refuses the amplification; nothing expanded
    assert problems["boucle-a.md"] == problems["boucle-b.md"] == "unreadable"
    assert problems["zz-disparu.md"] == "unreadable"
    notes = {n["source"]: n["detail"] for n in report.notes}
    assert "page(s) 2, 3, 4 of 4 have no text layer" in notes["scanne.pdf"]
    assert notes["utf16.txt"].startswith("not UTF-8: read as utf_16")
    assert "read as" in notes["latin1.md"]
    assert report.documents == 6  # horaires, scanne, utf16, latin1, crlf, profond

    index = Index.open(tmp_path / "index")
    by_source = {c.source: c for c in index.chunks}
    assert "samedi matin, place de l'Église" in by_source["utf16.txt"].text
    assert "fermée en août" in by_source["latin1.md"].text
    assert by_source["crlf.md"].title == "Cantine" and by_source["crlf.md"].url == "https://x.fr/cantine"
    assert "cimetière ouvre à 8 h" in by_source["profond.html"].text and "alert" not in by_source["profond.html"].text
    question = "horaires de la mairie"
    hits = index.search(FakeEmbedder().embed_query(question), question, k=3)
    assert hits[0].chunk.source == "horaires.md"
