"""The sentences and table rows of the passages, each as the verifier reads it: with its document and lead-in.

The verifier decides whether one sentence answers a question; a sentence read alone often does not say what it is
about ("Gratuit.", "Majeur : 86 €"), so it is read after its document's title, its heading path and the line that
opens its list or table. Training (``training/``) builds its pairs with the same function, so what the verifier
learned on is what it sees at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.answer.extracts import Unit, lead_in_of, number_units
from bot.answer.turn import Evidence, Passage

MAX_CONTEXT_CHARS = 160  # the title and heading path are context, not the sentence: kept short


@dataclass(frozen=True)
class Candidate:
    """One sentence or table row of a passage, with what it needs to be read alone.

    >>> p = Passage("S1", "t.md#0", "Passeport", "t.md", "", "", ["Tarifs"], "Prix :\\n- Majeur : 86 €", 0.7, 1.0)
    >>> [c.reading for c in candidates([p])]
    ['Passeport > Tarifs | Prix : Majeur : 86 €']
    """

    unit: Unit
    source: str
    chunk_id: str
    where: str  # title > headings
    lead_in: str  # the line that opens its list or table, "" if none

    @property
    def text(self) -> str:
        """The sentence or row, verbatim."""
        return self.unit.text

    @property
    def reading(self) -> str:
        """What the verifier reads: where the sentence is, then the sentence after its lead-in."""
        body = f"{self.lead_in} {self.text}" if self.lead_in else self.text
        return f"{self.where} | {body}"


def where(passage: Passage) -> str:
    """A passage's title and heading path, shortened to ``MAX_CONTEXT_CHARS``."""
    path = " > ".join([passage.title, *passage.headings])
    return path if len(path) <= MAX_CONTEXT_CHARS else path[: MAX_CONTEXT_CHARS - 1].rstrip() + "…"


def candidates(passages: list[Passage]) -> list[Candidate]:
    """Every statement of the passages (lead-ins and questions are not statements), in the order shown; units are
    numbered across the passages as the composer numbers them."""
    units = number_units(passages)
    by_number = {u.number: u for u in units}
    by_label = {p.label: p for p in passages}
    found = []
    for unit in units:
        if unit.is_lead_in or unit.text.rstrip().endswith("?"):
            continue
        passage = by_label[unit.label]
        opening = lead_in_of(unit, by_number) if unit.is_item else None
        found.append(Candidate(unit, passage.source, passage.chunk_id, where(passage), opening.text if opening else ""))
    return found


def evidence_of(candidate: Candidate, score: float) -> Evidence:
    """A candidate the verifier kept, as the turn records it."""
    c = candidate
    return Evidence(c.chunk_id, c.source, c.unit.position, c.text, c.reading, round(float(score), 4))
