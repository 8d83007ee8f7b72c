"""Yes and no: the answer a text opens with, read the same way by the answer path, its training and its scoring.

>>> yes_or_no("Non, il est interdit de brûler."), yes_or_no("Le prix est de 25 €.")
('non', '')
"""

from __future__ import annotations

import re

YES_NO = re.compile(r"^\W*(oui|non)\b", re.I)


def yes_or_no(text: str) -> str:
    """The yes/no a text opens with ("oui", "non") or ""."""
    found = YES_NO.match(text.strip())
    return found.group(1).lower() if found else ""
