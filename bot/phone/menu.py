"""The keypad menu a caller is offered when speech fails twice: the town's topics, then what each topic's
documents cover, by digits, or a person.

The town lists its topics in ``config/town.yaml`` (``voice.menu``): its reception knows what callers ask about. A
topic names the documents it covers (their file names in the index) and, if it likes, questions of its own; the
choices are those questions, then the sections of the documents as the index holds them (their headings), so the
menu follows the documents without anyone writing it. A topic is chosen by its digit (1 to 8); its choices are said
eight at a time, 9 says the next ones (or goes back to the topics after the last), 0 asks for a person everywhere.
Digits only: the recognizer that failed twice is not asked again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.errors import ConfigError
from bot.text import fold

log = logging.getLogger(__name__)
T = TypeVar("T")
PER_PAGE = 8  # digits 1 to 8; 9 is "more" (or "back"), 0 "a person"
WHERE = "config/town.yaml, voice.menu"
PAGE_MARK = re.compile(r"^page \d+$", re.IGNORECASE)  # a PDF's page marker is not a section


def by_digit(items: Sequence[T], digit: str) -> T | None:
    """The item a keypad digit names (1 for the first), or None.

    >>> by_digit(["a", "b"], "2"), by_digit(["a", "b"], "3"), by_digit(["a", "b"], "0")
    ('b', None, None)
    """
    return items[int(digit) - 1] if len(digit) == 1 and digit.isdigit() and 1 <= int(digit) <= len(items) else None


def with_digits(names: Iterable[str]) -> str:
    """What each digit chooses, as said.

    >>> with_digits(["l'état civil", "le cimetière"])
    "Pour l'état civil, tapez 1. Pour le cimetière, tapez 2."
    """
    return " ".join(f"Pour {name}, tapez {n}." for n, name in enumerate(names, 1))


@dataclass(frozen=True)
class Choice:
    said: str  # what the caller hears: "Acheter une concession"
    asked: str  # what goes through the answer path when it is chosen


@dataclass(frozen=True)
class MenuTopic:
    name: str  # as it is said: "les cartes d'identité et les passeports"
    choices: tuple[Choice, ...]
    titles: tuple[str, ...] = ()  # its documents' titles

    def page(self, number: int) -> tuple[Choice, ...]:
        return self.choices[number * PER_PAGE : (number + 1) * PER_PAGE]

    def has_page(self, number: int) -> bool:
        return bool(self.page(number))


Sections = Mapping[str, tuple[str, list[str]]]  # a document's file name -> (its title, its sections in order)


def sections_by_document(chunks: Iterable[Any]) -> dict[str, tuple[str, list[str]]]:
    """Each indexed document's title and sections (the last heading of each passage, in order, once; a PDF's page
    markers left out), from the index's passages."""
    found: dict[str, tuple[str, list[str]]] = {}
    for chunk in chunks:
        title, sections = found.setdefault(chunk.source, (chunk.title, []))
        section = chunk.headings[-1].strip() if chunk.headings else ""
        if section and section != title and not PAGE_MARK.match(section) and section not in sections:
            sections.append(section)
    return found


def _choices_of(documents: list[str], sections: Sections) -> list[Choice]:
    """What a topic's documents offer: each section (with the document's title when the topic has several), or
    the document itself when it has none."""
    choices = []
    for name in documents:
        title, parts = sections[name]
        short = title.split(" : ")[0]
        for part in parts:
            said = part if len(documents) == 1 else f"{part}, {short}"
            choices.append(Choice(said, f"{part} : {title}"))
        if not parts:
            choices.append(Choice(short, title))
    return choices


@dataclass(frozen=True)
class Menu:
    topics: tuple[MenuTopic, ...]

    @classmethod
    def from_town(cls, voice: dict[str, Any], sections: Sections) -> Menu | None:
        """The menu of ``voice.menu`` over the indexed documents' ``sections``, or None when the town lists none
        (the keypad then offers only a person). A malformed entry stops the start; a document the index lacks is
        left out with a warning, and so is a topic left with nothing to offer (the index is not the town's yet)."""
        listed = voice.get("menu")
        if listed is None:
            return None
        if not isinstance(listed, list) or not 1 <= len(listed) <= PER_PAGE:
            raise ConfigError(f"{WHERE}: expected a list of 1 to {PER_PAGE} topics, each with documents or questions.")
        topics = []
        for n, entry in enumerate(listed, 1):
            entry = entry if isinstance(entry, dict) else {}
            name, questions, documents = entry.get("topic"), entry.get("questions", []), entry.get("documents", [])
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"{WHERE}, topic {n}: 'topic' must be the topic's name as it is said.")
            for key, value in (("questions", questions), ("documents", documents)):
                if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                    raise ConfigError(f"{WHERE}, topic {n} ({name}): '{key}' must be a list of texts.")
            missing = [d for d in documents if d not in sections]
            if missing:
                log.warning("%s, topic %s: not in the index, left out: %s", WHERE, n, ", ".join(missing))
            choices = [Choice(q.strip(), q.strip()) for q in questions]
            choices += _choices_of([d for d in documents if d in sections], sections)
            if not choices:  # the index does not hold what the town listed: the rest of the service runs
                log.warning(
                    "%s, topic %s (%s): no question and none of its documents in the index, left out", WHERE, n, name
                )
                continue
            titles = tuple(sections[d][0] for d in documents if d in sections)
            topics.append(MenuTopic(name.strip(), tuple(choices), titles))
        return cls(tuple(topics)) if topics else None

    def covering(self, name: str) -> MenuTopic | None:
        """The topic with a document whose title holds ``name`` (a phone topic: a title or a service's topic,
        "carte d'identité et passeport"), or None."""
        wanted = fold(name)
        return next((t for t in self.topics if any(wanted in fold(title) for title in t.titles)), None)

    def topic(self, digit: str) -> MenuTopic | None:
        """The topic of a keypad digit, or None.

        >>> Menu((MenuTopic("l'état civil", (Choice("Demander un acte", "Demander un acte"),)),)).topic("1").name
        "l'état civil"
        """
        return by_digit(self.topics, digit)
