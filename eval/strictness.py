"""Cases that can fail: an expected-content group that a generic word satisfies proves nothing.

"oui", "non", "pas", "mairie" or a bare "1" occur in almost any reply, right or wrong; a group made only of such
alternatives passes an evasive answer. ``generic_groups`` names them, and the dataset tests reject any case that
has one (``tests/unit/test_datasets.py``).

>>> generic_groups(["oui", ["passeport", "non"], "86 €", ["mairie", "service urbanisme"], "2", "2,40"])
['oui', 'passeport | non', 'mairie | service urbanisme', '2']
"""

from __future__ import annotations

import re

from bot.text import fold

# Words a reply holds whatever it says: yes/no, negation, the town hall, the most common verbs and nouns of
# any answer. A group needs one alternative beyond these.
GENERIC_WORDS = frozenset(
    fold(w)
    for w in [
        "oui",
        "non",
        "pas",
        "ne",
        "n'",
        "plus",
        "mairie",
        "la",
        "le",
        "les",
        "l'",
        "de",
        "du",
        "des",
        "à",
        "a",
        "au",
        "en",
        "commune",
        "service",
        "demande",
        "document",
        "documents",
        "dossier",
        "formulaire",
        "possible",
        "impossible",
        "peut",
        "pouvez",
        "faut",
        "doit",
        "vous",
        "il",
        "elle",
        "ce",
        "cela",
        "accueil",
    ]
)


def is_generic(expected: str) -> bool:
    """True when ``expected`` is only generic words or a bare one- or two-digit number."""
    text = fold(expected).strip(" .,:;!?")
    if re.fullmatch(r"\d{1,2}", text):  # "1", "15": any reply may hold it; "2,40" or "15646" is a fact
        return True
    words = re.findall(r"[\w']+", text)
    return not words or all(w in GENERIC_WORDS for w in words)


def generic_groups(must_include: list) -> list[str]:
    """The groups of ``must_include`` that a generic word satisfies (one of its alternatives is generic), as
    "a | b"."""
    found = []
    for group in must_include:
        options = group if isinstance(group, list) else [group]
        if any(is_generic(o) for o in options):  # one generic alternative is enough to pass an evasive reply
            found.append(" | ".join(options))
    return found
