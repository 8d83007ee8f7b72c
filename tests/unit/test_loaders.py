import pytest

from ingestion.loaders import Unusable, load
from tests.conftest import write
from tools.make_demo_pdf import build as build_pdf


def test_markdown_front_matter(tmp_path, demo_corpus):
    doc = load(demo_corpus / "marche.md", demo_corpus)
    assert doc.title == "Le marché hebdomadaire"
    assert doc.url == "https://www.valbourg-sur-loire.fr/vie-locale/marche"
    assert doc.date == "2026-04-03"
    assert doc.source == "marche.md"


def test_html_headings_lists_and_table_rows_with_header(demo_corpus):
    doc = load(demo_corpus / "carte-identite-passeport.html", demo_corpus)
    assert doc.title == "Carte d'identité et passeport : prendre rendez-vous"
    assert doc.url.endswith("/carte-identite-passeport") and doc.date == "2026-10-02"
    assert "## Tarifs" in doc.markdown
    assert "- Titre : Passeport ; Situation : Majeur ; Prix : 86 €" in doc.markdown
    assert "Accueil > Démarches" not in doc.markdown  # navigation dropped


def test_pdf_text_layer_and_metadata(demo_corpus):
    doc = load(demo_corpus / "tarifs-cantine-periscolaire-2026-2027.pdf", demo_corpus)
    assert doc.title.startswith("Tarifs de la restauration scolaire")
    assert doc.date == "2026-06-12"
    assert "Tranche 2, QF de 500 à 899 : repas 2,40 euros." in doc.markdown


def test_pdf_without_text_layer_needs_ocr(tmp_path):
    scan = write(tmp_path / "scan.pdf", build_pdf(lines=[]))  # a page with no text, like a scan
    with pytest.raises(Unusable, match="OCR"):
        load(scan, tmp_path)


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("vide.md", "", "empty"),
        ("casse.pdf", b"%PDF-1.4 garbage", "unreadable PDF"),
        ("autre.xml", "<root><a>texte</a></root>", "not a Service-Public.fr fiche"),
    ],
)
def test_unusable_files_say_why(tmp_path, name, content, reason):
    path = write(tmp_path / name, content)
    with pytest.raises(Unusable, match=reason):
        load(path, tmp_path)


def test_cp1252_text_file(tmp_path):
    path = write(tmp_path / "note.txt", "Fermeture exceptionnelle le 14 août.".encode("cp1252"))
    doc = load(path, tmp_path)
    assert "14 août" in doc.markdown and doc.title == "note"


def test_markdown_pipe_table_rows_keep_their_header(demo_corpus):
    doc = load(demo_corpus / "cimetiere.md", demo_corpus)
    assert "- Durée : 30 ans ; Concession de 2 m² : 400 € ; Case de columbarium : 550 €" in doc.markdown
    assert "| --- |" not in doc.markdown
