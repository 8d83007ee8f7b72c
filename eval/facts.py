"""What a reply states that its sources do not: the evaluation's own reading, independent of the output guard.

The scorer must not grade the guard with the guard's own functions, or a bug in them would hold in the score by
construction. This module reads figures and contacts with its own, deliberately plain rules: every run of digits
(thousands joined, decimal comma as a point), every e-mail address and every web address. A reply's figure or contact
that is neither in the cited passages, nor in the town file, nor in the question (a resident's "16 ans" restated)
is invented. Citations are checked against the documents as ingestion stored them.

>>> sorted(invented("Le passeport coûte 86 € ; appelez le 01 99 00 12 34.", ["Prix : 86 €"], ""))
['0199001234']
>>> invented("Il faut 3 mois.", ["dans les 3 mois"], "")
set()
"""

from __future__ import annotations

import re
import unicodedata

from bot.answer.steps.passage_retriever import with_its_opening
from bot.engines.index import PASSAGE_BREAK, Index

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_WEB = re.compile(r"(?:https?://|www\.)[^\s<>()\"'«»]+", re.I)
_PHONE = re.compile(r"(?:\+33\s?(?:\(0\)\s?)?|\b0)[1-9](?:[\s.-]?\d{2}){4}\b")
_DIGITS = re.compile(r"\d+(?:[.,]\d+)?")
_THOUSANDS = re.compile(r"(?<=\d)[\s\u00a0\u202f.](?=\d{3}\b)")


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'")
    return re.sub(r"\s+", " ", text).lower()


def facts(text: str) -> set[str]:
    """The figures and contacts of a text: phone numbers as their ten digits, e-mails and web addresses as
    written (lower case, no trailing punctuation), and every other number."""
    text = _plain(text)
    found = {m.rstrip(".,;:!?)") for m in _EMAIL.findall(text)}
    found |= {m.rstrip(".,;:!?)").removeprefix("https://").removeprefix("http://") for m in _WEB.findall(text)}
    rest = _WEB.sub(" ", _EMAIL.sub(" ", text))
    for phone in _PHONE.findall(rest):
        digits = re.sub(r"\D", "", phone)
        found.add("0" + digits[2:].lstrip("0") if digits.startswith("33") else digits)
    rest = _PHONE.sub(" ", rest)
    rest = _THOUSANDS.sub("", rest)
    found |= {n.replace(",", ".") for n in _DIGITS.findall(rest)}
    return found


def invented(reply: str, sources: list[str], question: str) -> set[str]:
    """The reply's figures and contacts that neither ``sources`` (the cited passages and the town file) nor the
    question hold."""
    known = set().union(*(facts(s) for s in sources), facts(question)) if sources else facts(question)
    said = facts(reply)
    known_text = " ".join(_plain(s) for s in sources)
    return {f for f in said if f not in known and not ("@" in f or "/" in f or "." in f and f in known_text)}


def stored_document(index: Index, source: str) -> str:
    """A document as its passages are shown: each chunk read from its opening (``with_its_opening``, as retrieval
    gives it), separated by ``PASSAGE_BREAK``."""
    chunks = index.document_text(source).split(PASSAGE_BREAK)
    shown = (with_its_opening(text, before) for before, text in zip(["", *chunks[:-1]], chunks, strict=True))
    return PASSAGE_BREAK.join(shown)


def quote_in_document(quote: str, document: str) -> bool:
    """Whether every piece of a citation's quote (pieces joined by "[…]") occurs in the document's stored text,
    spacing and bullets aside: in one of its passages (separated by ``PASSAGE_BREAK``: they overlap, so a sentence
    at a boundary is whole only within its own passage) or across them."""

    def squeezed(text: str) -> str:
        return re.sub(r"[\s\-•]+", " ", _plain(text)).strip()

    texts = [squeezed(document), *(squeezed(part) for part in document.split(PASSAGE_BREAK))]
    pieces = [squeezed(p) for p in quote.split("[…]")]
    return bool(pieces) and all(p and any(p in text for text in texts) for p in pieces)
