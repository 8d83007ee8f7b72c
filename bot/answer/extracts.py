"""Extractive answers: the passages as numbered sentences and table rows, and the chosen ones made whole.

The small model restates passages unreliably (a "Oui" where the text says no, the wrong row, a fragment), yet it
is good at choosing among a few numbered candidates. So the passages are shown to it as numbered units, it
answers with numbers, and the resident reads the official sentences themselves. A chosen unit is made whole by
rules that follow from the form of the text, never from a question: a lead-in ("Tarifs :") brings the rows it
introduces, and a sentence that points back ("Dans ce cas, …") brings the sentence it points to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.answer.textmatch import marked_sentences
from bot.answer.turn import Passage
from bot.text import fold

MAX_ROWS_AFTER_LEAD_IN = 6
TABLE_CAPTION = "Tableau : "  # how ingestion opens a table (ingestion/loaders.py, ingestion/dila.py)
# A sentence that opens like this only makes sense after the one before it.
_POINTS_BACK = re.compile(
    r"^(dans (ce|ces) cas|en revanche|toutefois|cependant|sinon|par contre|de plus|en outre|pour cela|a cet effet"
    r"|celui-ci|celle-ci|ceux-ci|celles-ci|cela|ce dernier|cette derniere|en effet|a defaut|dans le cas contraire)\b"
)
# A list item that goes on the one before it ("ou au tribunal", "et de la commune") is read with it.
GOES_ON = re.compile(r"^(ou|et|soit|ni|puis|mais)\s")


@dataclass(frozen=True)
class Unit:
    """One sentence or table row of a passage, numbered for the model (``number`` starts at 1 per turn)."""

    number: int
    label: str  # the passage it comes from (S1…Sn)
    position: int  # its rank inside that passage
    text: str
    is_item: bool = False  # a list item or table row (it had a bullet)

    @property
    def is_row(self) -> bool:
        """A table row as ingestion writes it ("Titre : Passeport ; Prix : 86 €"), not an item of a list, even one
        that names what it lists ("Pièce d'identité du mineur : carte d'identité ou passeport")."""
        return self.is_item and " ; " in self.text

    @property
    def is_lead_in(self) -> bool:
        """A line that introduces what follows: "Tarifs :", or a table's caption as ingestion writes it."""
        return self.text.rstrip().endswith(":") or self.text.startswith(TABLE_CAPTION)


def number_units(passages: list[Passage]) -> list[Unit]:
    """Every sentence and row of the passages, numbered from 1 in the order shown.

    >>> p = Passage("S1", "c#1", "T", "t.md", "", "", [], "Tarifs :\\n- Majeur : 86 €\\n- Mineur : 42 €", 0.7, 1.0)
    >>> [(u.number, u.text) for u in number_units([p])]
    [(1, 'Tarifs :'), (2, 'Majeur : 86 €'), (3, 'Mineur : 42 €')]
    """
    units, number = [], 0
    for passage in passages:
        for position, (text, is_item) in enumerate(marked_sentences(passage.text) or [(passage.text.strip(), False)]):
            number += 1
            units.append(Unit(number, passage.label, position, text, is_item))
    return units


def made_whole(chosen: list[int], units: list[Unit]) -> list[Unit]:
    """The chosen units plus what they need to be read alone, in the order of the passages.

    >>> p = Passage("S1", "c#1", "T", "t.md", "", "", [], "Il faut un justificatif. Dans ce cas, c'est gratuit. "
    ...             "Tarifs :\\n- Majeur : 86 €\\n- Mineur : 42 €", 0.7, 1.0)
    >>> units = number_units([p])
    >>> [u.text for u in made_whole([2], units)]
    ['Il faut un justificatif.', "Dans ce cas, c'est gratuit."]
    >>> [u.text for u in made_whole([3], units)]
    ['Tarifs :', 'Majeur : 86 €', 'Mineur : 42 €']
    >>> p = Passage("S1", "c#1", "T", "t.md", "", "", [], "Vous pouvez la faire :\\n- au commissariat\\n- ou à la "
    ...             "gendarmerie\\n- ou au tribunal", 0.7, 1.0)
    >>> [u.text for u in made_whole([4], number_units([p]))]
    ['Vous pouvez la faire :', 'au commissariat', 'ou à la gendarmerie', 'ou au tribunal']
    """
    by_number = {u.number: u for u in units}
    kept = {n for n in chosen if n in by_number}
    for n in sorted(kept):
        unit = by_number[n]
        if unit.is_lead_in:  # "Tarifs :" says nothing by itself: the rows it opens do
            kept.update(u.number for u in _opened_by(unit, by_number))
        # Walk back while a sentence points back or goes on the one before it ("ou à la gendarmerie").
        while unit.number - 1 in by_number and (_POINTS_BACK.match(fold(unit.text)) or GOES_ON.match(unit.text)):
            before = by_number[unit.number - 1]
            if before.label != unit.label:
                break
            kept.add(before.number)
            unit = before
        lead_in = by_number.get(unit.number - 1)
        if unit.number != n and lead_in and lead_in.label == unit.label and lead_in.is_lead_in:
            kept.add(lead_in.number)  # a list read from one of its items is read with what it lists
        elif unit.is_item and not unit.is_row and (opening := lead_in_of(unit, by_number)):
            # An item alone ("Commune où …") says nothing without what it is a case of, and one condition of a
            # list is not all of them. A table row names its columns, and the other rows are other cases.
            kept.add(opening.number)
            kept.update(u.number for u in _opened_by(opening, by_number, items_only=True))
    whole = [by_number[n] for n in sorted(kept)]
    # A lead-in left without the rows it opens (the passage ends there) is noise.
    return [u for u in whole if not u.is_lead_in or any(o.label == u.label and o.position > u.position for o in whole)]


def _opened_by(lead_in: Unit, by_number: dict[int, Unit], items_only: bool = False) -> list[Unit]:
    """The rows or items that follow a lead-in in its passage, up to the next lead-in (at most a few); with
    ``items_only``, up to the first line that is not a list item either."""
    opened = []
    for follower in (by_number.get(lead_in.number + k) for k in range(1, MAX_ROWS_AFTER_LEAD_IN + 1)):
        if (
            not follower
            or follower.label != lead_in.label
            or follower.is_lead_in
            or (items_only and not follower.is_item)
        ):
            break
        opened.append(follower)
    return opened


def lead_in_of(item: Unit, by_number: dict[int, Unit]) -> Unit | None:
    """The line that opens the list or table ``item`` belongs to, if the passage shows it."""
    before = by_number.get(item.number - 1)
    while before and before.label == item.label and before.is_item and not before.is_lead_in:
        before = by_number.get(before.number - 1)
    return before if before and before.label == item.label and before.is_lead_in else None


def as_answer(texts: list[str]) -> str:
    """Chosen sentences and rows as one text a resident reads: sentences as they are, rows closed by a full
    stop, and a list item that goes on the one before it joined to it.

    >>> as_answer(["Tarifs :", "Majeur : 86 €", "Mineur : 42 €"])
    'Tarifs : Majeur : 86 €. Mineur : 42 €.'
    >>> as_answer(["Vous pouvez la faire :", "au commissariat", "ou à la gendarmerie"])
    'Vous pouvez la faire : au commissariat, ou à la gendarmerie.'
    >>> as_answer(["Le repas comporte :", "un plat principal,", "une garniture,", "un dessert."])
    'Le repas comporte : un plat principal, une garniture, un dessert.'
    """
    out, closed_by_us = "", False
    for text in (t.strip() for t in texts):
        if closed_by_us and text[:1].islower():
            out = out[:-1] + ","
        out += (" " if out else "") + text
        closed_by_us = text[-1:] not in ".!?:,;"  # an item the document ends with a comma goes on as it is
        if closed_by_us:
            out += "."
    return out[:-1] + "." if out.endswith((",", ";")) else out


_ROW_CELL = re.compile(r"^\s*[^;:]{1,60}?\s:\s(.+)$")


def as_sentence(text: str) -> str:
    """A table row as a receptionist would read it: its values, the last one after a colon; anything else as is.

    >>> as_sentence("Titre : Passeport ; Situation : Majeur ; Prix : 86 €")
    'Passeport, majeur : 86 €'
    >>> as_sentence("Le passeport est valable 10 ans.")
    'Le passeport est valable 10 ans.'
    """
    if " ; " not in text:
        return text
    cells = [c.strip() for c in text.split(" ; ") if c.strip()]
    values = [(m.group(1) if (m := _ROW_CELL.match(c)) else c).strip() for c in cells]
    if len(values) < 2:
        return text
    head = [values[0], *(v[:1].lower() + v[1:] if v[1:2].islower() or len(v) == 1 else v for v in values[1:-1])]
    return f"{', '.join(head)} : {values[-1]}"


def readable(texts: list[str]) -> str:
    """Official sentences and rows as one text a resident reads: rows as sentences, a table's caption left out
    when its rows follow (they say what they are), joined as ``as_answer`` joins them.

    >>> readable(["Tableau : Prix", "Titre : Passeport ; Situation : Majeur ; Prix : 86 €"])
    'Passeport, majeur : 86 €.'
    >>> readable(["Le passeport coûte 86 €.", "Le passeport coûte 86 €."])
    'Le passeport coûte 86 €.'
    """
    rows = [t for t in texts if " ; " in t]
    kept = [t for t in texts if not (rows and t.startswith(TABLE_CAPTION))]
    return as_answer(list(dict.fromkeys(as_sentence(t) for t in kept)))  # a sentence two passages hold, once
