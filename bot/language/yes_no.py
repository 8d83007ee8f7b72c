"""Yes and no: the answer a text opens with, read the same way by the answer path, its training and its scoring.

>>> yes_or_no("Non, il est interdit de brûler."), yes_or_no("Le prix est de 25 €.")
('non', '')
"""

from __future__ import annotations

import re

from bot.text import fold_accents

YES_NO = re.compile(r"^\W*(oui|non)\b", re.I)


def yes_or_no(text: str) -> str:
    """The yes/no a text opens with ("oui", "non") or ""."""
    found = YES_NO.match(text.strip())
    return found.group(1).lower() if found else ""


SPOKEN_YES = re.compile(r"^\W*(oui|ouais|ouai|exact(ement)?|tout a fait|c'?est (bien )?(ca|cela)|d'accord|voila)\b")
SPOKEN_NO = re.compile(r"^\W*(non|pas du tout|pas (ca|cela)|ce n'?est pas (ca|cela)|c'?est pas (ca|cela))\b")


def spoken_yes_or_no(text: str) -> str:
    """A caller's reply to a yes/no question, as the recognizer wrote it ("oui", "non") or "".

    >>> [spoken_yes_or_no(t) for t in ("Oui, c'est ça.", "ouais", "C'est bien ça", "Non merci", "le passeport")]
    ['oui', 'oui', 'oui', 'non', '']
    """
    folded = fold_accents(text.strip().lower()).replace("’", "'")
    if SPOKEN_NO.match(folded):
        return "non"
    return "oui" if SPOKEN_YES.match(folded) else ""
