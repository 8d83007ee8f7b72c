"""Text comparisons the guards rely on: figures and contacts in a text, and content words of a question.

>>> sorted(figures("Le passeport coûte 86 € (1 000 pages) ; appelez le 01 99 00 12 34."))
['0199001234', '1000', '86']
"""

from __future__ import annotations

import re

from bot.language.numerals import NUMBER, join_thousands, quantities, without_contacts
from bot.text import EMAIL, PHONE, URL, normalize

# A sentence ends at its punctuation or at a line break, but not where the next line goes on in lower case: a
# document hard-wrapped at a fixed width ("…sur rendez-vous, une\nfois par mois") keeps its sentences whole.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+(?![ \t]*[a-zà-öø-ÿœæ])")
# A table row's column name as ingestion writes rows ("Titre : Passeport ; Prix : 86 €"), at its start or after a ";".
ROW_LABEL = re.compile(r"(?:^|;)\s*[^;:]{1,40}?\s:\s")


def sentences(text: str) -> list[str]:
    r"""Sentences and list/table lines of a passage, verbatim but for a leading bullet.

    >>> sentences("Tarifs :\n- Majeur : 86 €\n- Mineur : 17 €. Gratuit si perdu ? Non.")
    ['Tarifs :', 'Majeur : 86 €', 'Mineur : 17 €.', 'Gratuit si perdu ?', 'Non.']
    >>> sentences("Ils ne sont pas collectés :\napportez-les à la déchetterie. Merci.")
    ['Ils ne sont pas collectés :\napportez-les à la déchetterie.', 'Merci.']
    """
    return [sentence for sentence, _ in marked_sentences(text)]


def marked_sentences(text: str) -> list[tuple[str, bool]]:
    r"""``sentences``, each with whether it was a list item or table row (it had a bullet).

    >>> marked_sentences("Tarifs :\n- Majeur : 86 €")
    [('Tarifs :', False), ('Majeur : 86 €', True)]
    """
    pieces = ((s.strip(), s.strip().lstrip("-• ").strip()) for s in SENTENCE_END.split(text))
    return [(bare, raw[:1] in "-•") for raw, bare in pieces if len(bare) > 2]


def verbatim_pieces(text: str, quoted: list[str]) -> list[str]:
    r"""The sentences ``quoted`` from ``text`` as the pieces of it they make: sentences that follow each other in
    the text, with nothing but spaces, line breaks or a list's bullet between them, are one piece, read as the
    text has it; the others stay apart (a quote joins them with "[…]", which then always marks a gap).

    >>> text = "Il faut :\n- un formulaire\n- une pièce d'identité\nLe délai est d'un mois. Voir le site."
    >>> verbatim_pieces(text, ["Il faut :", "un formulaire", "une pièce d'identité", "Voir le site."])
    ["Il faut :\n- un formulaire\n- une pièce d'identité", 'Voir le site.']
    """
    pieces: list[str] = []
    start = end = -1  # where the last piece is in the text (-1: not found there)
    for sentence in quoted:
        at = text.find(sentence, max(end, 0))
        if at >= 0 and end >= 0 and not text[end:at].strip(" \t\n-•"):
            pieces[-1] = text[start : at + len(sentence)]
        else:
            pieces.append(sentence)
            start = at
        end = at + len(sentence) if at >= 0 else -1
    return pieces


def contacts(text: str) -> set[str]:
    """Phone numbers (digits only), e-mails and URLs (lower case, no trailing punctuation)."""
    text = normalize(text)
    found = {m.digits for m in PHONE.finditer(text)}
    found |= {m.rstrip(".,;:") for m in EMAIL.findall(text)}
    found |= {m.rstrip(".,;:").removeprefix("https://").removeprefix("http://") for m in URL.findall(text)}
    return found


def figures(text: str) -> set[str]:
    """Every contact plus every number (thousands joined, decimal comma as dot) in ``text``."""
    found = contacts(text)
    stripped = without_contacts(text)
    found |= {n.replace(",", ".") for n in NUMBER.findall(join_thousands(stripped))}
    return found


def unsupported_figures(answer: str, evidence: str) -> set[str]:
    """Figures of ``answer`` that ``evidence`` does not contain (contacts exactly, numbers as numbers, and a
    number written with a unit only where the evidence has it with that unit: "20 places" is not "20 m²").

    >>> sorted(unsupported_figures("Le tarif est de 25 € ou 30 €.", "Timbre fiscal de 25 €."))
    ['30']
    >>> sorted(unsupported_figures("Il reste 20 places.", "Un abri de 20 m² au plus."))
    ['20 place']
    """
    known = figures(evidence)
    evidence_norm = normalize(evidence)
    missing = set()
    for figure in figures(answer):
        if figure in known:
            continue
        if "@" in figure or "/" in figure or "." in figure and not figure.replace(".", "").isdigit():
            if figure not in evidence_norm:
                missing.add(figure)
        else:
            missing.add(figure)
    # A number the evidence writes only with other units is not this quantity (a bare number may be any).
    known_quantities = quantities(evidence)
    for number, unit in quantities(answer) - known_quantities:
        if unit and number not in missing and (number, "") not in known_quantities:
            missing.add(f"{number} {unit}")
    return missing


def without_personal_clauses(text: str) -> str:
    """The question without the clauses that only carried masked personal data ("mon mail est [courriel]").

    >>> without_personal_clauses("Je suis au [numéro de téléphone], quels sont les horaires ?")
    'quels sont les horaires ?'
    >>> without_personal_clauses("Mon téléphone est le [numéro de téléphone] et je voudrais le prix")
    'et je voudrais le prix'
    """
    own = re.sub(
        r"\b(voici |c'est )?(mon|ma|mes|notre)\b[\w' ]{0,40}?(est|c'est|:)?\s*(le |la |l')?\[[^\]]*\]",
        " ",
        text,
        flags=re.I,
    )
    clauses = re.split(r"(?<=[,;:.!?])\s+", own)
    kept = [c for c in clauses if "[" not in c]
    return re.sub(r"\s+", " ", " ".join(kept)).strip(" ,;:") or text
