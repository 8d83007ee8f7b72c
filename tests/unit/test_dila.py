# ruff: noqa: E501 - XML fixture lines are kept whole
from ingestion.dila import parse_fiche
from tests.conftest import SHARED

FICHE = b"""<?xml version="1.0" encoding="UTF-8"?>
<Publication xmlns:dc="http://purl.org/dc/elements/1.1/" ID="F1" spUrl="https://www.service-public.fr/particuliers/vosdroits/F1">
<dc:title>Passeport</dc:title><dc:date>modified 2020-03-04</dc:date>
<FilDAriane><Niveau>Accueil</Niveau></FilDAriane>
<Introduction><Texte><Paragraphe>Le passeport est un titre de voyage.</Paragraphe></Texte></Introduction>
<ListeSituations><Situation><Titre>Majeur</Titre><Texte>
<Chapitre><Titre><Paragraphe>Co\xc3\xbbt</Paragraphe></Titre>
<Paragraphe>Le prix est de <MiseEnEvidence>86 \xe2\x82\xac</MiseEnEvidence>.</Paragraphe>
<Tableau><Rang\xc3\xa9e type="header"><Cellule><Paragraphe>\xc3\x82ge</Paragraphe></Cellule><Cellule><Paragraphe>Prix</Paragraphe></Cellule></Rang\xc3\xa9e>
<Rang\xc3\xa9e type="normal"><Cellule><Paragraphe>Mineur de moins de 15 ans</Paragraphe></Cellule><Cellule><Paragraphe>17 \xe2\x82\xac</Paragraphe></Cellule></Rang\xc3\xa9e></Tableau>
<ANoter><Titre>\xc3\x80 noter</Titre><Paragraphe>Le timbre s'ach\xc3\xa8te en ligne.</Paragraphe></ANoter>
</Chapitre></Texte></Situation></ListeSituations>
<OuSAdresser><Titre>Mairie</Titre></OuSAdresser>
</Publication>"""


def test_fiche_metadata_and_structure():
    fiche = parse_fiche(FICHE)
    assert fiche["title"] == "Passeport"
    assert fiche["url"] == "https://www.service-public.fr/particuliers/vosdroits/F1"
    assert fiche["date"] == "2020-03-04"
    md = fiche["markdown"]
    assert "## Majeur" in md and "### Coût" in md
    assert "Le prix est de 86 €." in md


def test_table_rows_keep_their_header_and_notes_their_label():
    md = parse_fiche(FICHE)["markdown"]
    assert "- Âge : Mineur de moins de 15 ans ; Prix : 17 €" in md
    assert "À noter : Le timbre s'achète en ligne." in md
    assert "Accueil" not in md and "Mairie" not in md  # navigation and directory are not answer text


def test_every_shared_fiche_parses_with_a_title_and_url():
    files = sorted((SHARED / "service-public-fiches-vdd").rglob("*.xml"))
    assert len(files) == 393
    for path in files:
        fiche = parse_fiche(path.read_bytes())
        assert fiche["title"], path
        assert fiche["url"].startswith("https://www.service-public.fr/"), path


def test_a_cells_list_items_stay_apart():
    """A table cell holding a list reads as its items, not as one glued word ("PasseportJustificatif")."""
    fiche = FICHE.replace(
        b"<Cellule><Paragraphe>17 \xe2\x82\xac</Paragraphe></Cellule>",
        b"<Cellule><Liste><Item><Paragraphe>Passeport</Paragraphe></Item><Item><Paragraphe>Justificatif de "
        b"<LienInterne>domicile</LienInterne></Paragraphe></Item><Item><Paragraphe>17 \xe2\x82\xac</Paragraphe>"
        b"</Item></Liste></Cellule>",
    )
    md = parse_fiche(fiche)["markdown"]
    assert "- Âge : Mineur de moins de 15 ans ; Prix : Passeport, Justificatif de domicile, 17 €" in md
