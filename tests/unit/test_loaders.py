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


def test_html_text_outside_block_elements_is_kept_in_order(tmp_path):
    page = (
        "<html><body><div>Accueil du public <a href='#'>sans rendez-vous</a></div><p>Le mardi.</p>"
        "<section><div>Fermé en août.</div></section><!-- note interne --></body></html>"
    )
    doc = load(write(tmp_path / "page.html", page), tmp_path)
    assert doc.markdown == "Accueil du public sans rendez-vous\n\nLe mardi.\n\nFermé en août."


def test_front_matter_that_is_not_yaml_is_read_line_by_line_with_a_note(tmp_path):
    doc = load(
        write(tmp_path / "n.md", "---\r\ntitle: Cimetière : tarifs\r\ndate: 2026-01-02\r\n---\r\nTexte."), tmp_path
    )
    assert (doc.title, doc.date, doc.markdown) == ("Cimetière : tarifs", "2026-01-02", "Texte.")
    assert doc.notes and "not valid YAML" in doc.notes[0]
