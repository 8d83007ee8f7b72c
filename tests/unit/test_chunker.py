from ingestion.chunker import split_document
from ingestion.loaders import SourceDocument, load


def test_chunks_carry_heading_path_and_stable_ids(demo_corpus):
    doc = load(demo_corpus / "cimetiere.md", demo_corpus)
    chunks = split_document(doc)
    assert [c.id for c in chunks] == [f"cimetiere.md#{i}" for i in range(len(chunks))]
    tariff = next(c for c in chunks if "750 €" in c.text)
    assert tariff.headings == ["Acheter une concession"]  # the document title is not repeated
    assert tariff.title == "Cimetière communal : concessions et règlement"
    assert tariff.url.endswith("/cimetiere") and tariff.date == "2025-12-05"
    assert split_document(doc)[0].hash == chunks[0].hash  # deterministic


def test_long_sections_are_cut_below_the_limit():
    text = "# Titre\n\n## Partie\n\n" + "\n\n".join(f"Phrase numéro {i} assez longue pour remplir." for i in range(200))
    chunks = split_document(SourceDocument("long.md", "Titre", "", "2026-01-01", text), chunk_chars=300)
    assert len(chunks) > 10
    assert all(len(c.text) <= 300 for c in chunks)
    assert all(c.headings == ["Partie"] for c in chunks)
    assert len({c.hash for c in chunks}) == len(chunks)
