"""Service-Public.fr "vosdroits" XML fiches (DILA schema 3.3) rendered as heading-structured Markdown.

Situations, chapters and cases become headings so the chunker keeps the heading path with each passage;
tables become one line per row that repeats the column headers; "À noter" blocks keep their label.
"""

from __future__ import annotations

import re

from lxml import etree

DC = "{http://purl.org/dc/elements/1.1/}"
NOTE_LABELS = {"ANoter": "À noter", "ASavoir": "À savoir", "Attention": "Attention", "Rappel": "Rappel"}
# Navigation, contacts directory references and "see also" blocks: not answer text.
SKIPPED = {
    "OuSAdresser",
    "Reference",
    "PourEnSavoirPlus",
    "VoirAussi",
    "QuestionReponse",
    "FilDAriane",
    "Theme",
    "SousThemePere",
    "DossierPere",
    "NoticeLiee",
    "Colonne",
    "Source",
    "Image",
}


def is_dila_fiche(head: bytes) -> bool:
    """True if the start of an XML file looks like a DILA publication."""
    return b"<Publication" in head


def parse_fiche(data: bytes) -> dict:
    """Return ``{"title", "url", "date", "markdown"}`` for one fiche.

    >>> xml = b'<Publication spUrl="https://x/F1"><Introduction><Texte><Paragraphe>Bonjour</Paragraphe>'
    >>> parse_fiche(xml + b'</Texte></Introduction></Publication>')["markdown"]
    'Bonjour'
    >>> dc = b'<Publication xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description>Non, interdit.</dc:description>'
    >>> parse_fiche(dc + b'<Texte><Paragraphe>Les regles.</Paragraphe></Texte></Publication>')["markdown"].split()
    ['Non,', 'interdit.', 'Les', 'regles.']
    """
    root = read_xml(data)
    title = _text(root.find(f"{DC}title"))
    date = modified(root)
    blocks: list[str] = []
    for name in ("Introduction", "ListeSituations", "Texte"):
        for el in root.findall(name):
            blocks.extend(_render(el, level=2))
    # The fiche's summary is often the direct answer ("Non, il est interdit de…"): it leads the text, unless
    # the introduction already says it.
    description = _text(root.find(f"{DC}description"))
    if description and description not in " ".join(blocks[:2]):
        blocks.insert(0, description)
    return {"title": title, "url": root.get("spUrl", ""), "date": date, "markdown": "\n\n".join(blocks).strip()}


def read_xml(data: bytes):
    """A fiche's XML tree; entities are not expanded and nothing is fetched (``etree.XMLSyntaxError`` if malformed)."""
    return etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))


def modified(root) -> str:
    """The fiche's date (``dc:date``, "modified 2020-08-26" → "2020-08-26")."""
    return re.sub(r"^(modified|created)\s+", "", _text(root.find(f"{DC}date")))


# Elements that hold a paragraph or a list item of their own: inside a table cell or a note, their texts are
# separate pieces ("Passeport", "Justificatif de domicile"), never glued into one word ("PasseportJustificatif").
BLOCKS = frozenset({"Paragraphe", "Item", "Liste", "Titre", "Texte", "Cellule", "Rangée", "Tableau"})
_END_OF_PIECE = (".", ",", ";", ":", "!", "?")


def _text(el) -> str:
    """All text inside an element (inline links, emphasis, exponents), whitespace collapsed; the paragraphs and list
    items it holds are read as pieces, joined by a comma unless one ends with punctuation.

    >>> _text(read_xml(b"<Cellule><Liste><Item><Paragraphe>Passeport</Paragraphe></Item><Item><Paragraphe>"
    ...                b"Une photo <LienInterne>conforme</LienInterne></Paragraphe></Item></Liste></Cellule>"))
    'Passeport, Une photo conforme'
    """
    if el is None:
        return ""
    pieces = [re.sub(r"\s+", " ", piece).strip() for piece in "".join(_pieces(el)).split("\x00")]
    text = ""
    for piece in (p for p in pieces if p):
        text += piece if not text else (" " if text.endswith(_END_OF_PIECE) else ", ") + piece
    return text


def _pieces(el):
    """The text of ``el`` and its descendants, in order, with a break (``\\x00``) around every block element."""
    yield el.text or ""
    for child in el:
        block = isinstance(child.tag, str) and child.tag in BLOCKS
        if isinstance(child.tag, str):
            yield "\x00" if block else ""
            yield from _pieces(child)
            yield "\x00" if block else ""
        yield child.tail or ""


def _heading(el) -> str:
    return _text(el.find("Titre"))


def _render(el, level: int) -> list[str]:
    """Render the children of a structural element as Markdown blocks."""
    out: list[str] = []
    for child in el:
        if not isinstance(child.tag, str) or child.tag in SKIPPED:
            continue
        tag = child.tag
        if tag in ("Situation", "Chapitre", "SousChapitre", "Cas"):
            title = _heading(child)
            if title:
                out.append(f"{'#' * min(level, 6)} {title}")
            out.extend(_render(child, level + 1))
        elif tag == "Titre":
            continue  # consumed by its parent's heading
        elif tag in ("Texte", "BlocCas", "ListeSituations", "FragmentConditionne"):
            out.extend(_render(child, level))
        elif tag == "Paragraphe":
            text = _text(child)
            if text:
                out.append(text)
        elif tag == "Liste":
            items = [f"- {_text(item)}" for item in child.findall("Item") if _text(item)]
            if items:
                out.append("\n".join(items))
        elif tag == "Tableau":
            out.append(_table(child))
        elif tag in NOTE_LABELS:
            body = " ".join(b for b in (_text(p) for p in child if p.tag != "Titre") if b)
            out.append(f"{NOTE_LABELS[tag]} : {body}")
        elif tag in ("ServiceEnLigne", "ServiceEnLigneAnnexe"):
            label, url = _heading(child), child.get("URL", "")
            out.append(f"Service en ligne : {label}" + (f" ({url})" if url else ""))
        else:
            text = _text(child)
            if text:
                out.append(text)
    return out


def _table(table) -> str:
    """One line per row, each cell prefixed by its column header, so a row read alone keeps its meaning."""
    rows = table.findall("Rangée")
    header = next((r for r in rows if r.get("type") == "header"), None)
    names = [_text(c) for c in header.findall("Cellule")] if header is not None else []
    lines = [f"Tableau : {_heading(table)}"] if _heading(table) else []
    for row in rows:
        if row is header:
            continue
        cells, col = [], 0
        for cell in row.findall("Cellule"):
            span = int(cell.get("fusionHorizontale", "1") or 1)
            label = " / ".join(n for n in names[col : col + span] if n)
            value = _text(cell)
            cells.append(f"{label} : {value}" if label and value else value)
            col += span
        line = " ; ".join(c for c in cells if c)
        if line:
            lines.append(f"- {line}")
    return "\n".join(lines)
