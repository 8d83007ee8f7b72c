"""A generated question as residents also write it: a text message, without accents, spoken, or after a story.

The local model writes tidy questions; residents don't. Each register is a rule of form applied to the model's
question, chosen reproducibly from the question's own hash, so the verifier sees the same meaning in the forms it
will meet (the spelling table is the input guard's, read backwards).

>>> sms("Combien coûte un passeport pour mon fils ?")
'cb coute un passeport pr mon fils'
>>> spoken("Quand faut-il déclarer une naissance ?")
'euh bonjour oui je voulais savoir quand faut-il déclarer une naissance'
"""

from __future__ import annotations

import hashlib
import re

from bot.language.abbreviations import WRITTEN_OUT
from bot.text import fold_accents

# Spelled-out word -> the shortest abbreviation the input guard writes out as that word.
_ABBREVIATED: dict[str, str] = {}
for _short, _word in sorted(WRITTEN_OUT.items(), key=lambda item: len(item[0])):
    if " " not in _word and "'" not in _word:
        _ABBREVIATED.setdefault(_word, _short)
_OPENINGS = (
    "euh bonjour oui je voulais savoir",
    "allo oui bonjour alors voilà",
    "oui bonjour c'est pour une question",
)
_STORIES = (
    "Bonjour, je viens d'emménager dans la commune et je m'y perds un peu dans les démarches.",
    "Bonjour, ma mère est âgée et c'est moi qui m'occupe de ses papiers depuis quelque temps.",
    "Bonsoir, je vous écris parce que je n'ai pas trouvé l'information sur internet.",
    "Bonjour, on m'a dit à la boulangerie de vous demander, alors je tente ma chance.",
)


def sms(question: str) -> str:
    """A text message: lower case, no accents, abbreviations, no question mark."""
    words = [_ABBREVIATED.get(w, w) for w in re.findall(r"[\w'-]+", question.lower())]
    return fold_accents(" ".join(words))


def without_accents(question: str) -> str:
    """Typed on a keyboard without accents."""
    return fold_accents(question)


def spoken(question: str, n: int = 0) -> str:
    """A voice transcript: an opening filler, no punctuation, lower case."""
    words = " ".join(re.findall(r"[\w'-]+", question.lower()))
    return f"{_OPENINGS[n % len(_OPENINGS)]} {words}"


def told(question: str, n: int = 0) -> str:
    """The question at the end of a short story."""
    return f"{_STORIES[n % len(_STORIES)]} {question}"


def in_some_register(question: str, share: float = 0.4) -> tuple[str, str]:
    """The question in one register (``standard``: unchanged), chosen from its hash so that ``share`` of the
    questions are changed."""
    h = int(hashlib.sha256(question.encode()).hexdigest()[:8], 16)
    if (h % 1000) / 1000 >= share:
        return question, "standard"
    kind = (h // 1000) % 4
    if kind == 0:
        return sms(question), "sms"
    if kind == 1:
        return without_accents(question), "sans accents"
    if kind == 2:
        return spoken(question, h), "vocal"
    return told(question, h), "récit"
