"""What a caller may be calling about, when the recognizer heard them badly.

The phone's recognizer often gets a question half wrong ("camp d'identité" for "carte d'identité"). Rather than ask
the caller to repeat (and fail again the same way), the dialog names the closest of the town's topics and asks for
a yes. The topics are the town's own: its services' topics in ``config/town.yaml`` and the titles of its indexed
documents. A transcript lands on one by meaning (the embedder the service already runs) or by sound (a French
phonetic key of the words, so a word misheard for one that sounds alike still lands).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
from rapidfuzz import fuzz

from bot.text import fold_accents

PARTS = re.compile(r"\s+(?:et|ou)\s+|\s*[,:;]\s*")
MAX_TOPIC_WORDS = 8  # a document title longer than this is not a topic one can say back to a caller
# (pattern, replacement), in order: spelling to sound for French, simplified.
SOUNDS = [
    (r"['’]", ""),  # "d'identité" sounds as "didentité"
    (r"[^a-z ]", " "),
    (r"ph", "f"),
    (r"qu|q", "k"),
    (r"c(?=[eiy])", "s"),
    (r"ch", "S"),
    (r"c", "k"),
    (r"g(?=[eiy])", "j"),
    (r"gu(?=[eiy])", "g"),
    (r"(?<=[aeiouy])s(?=[aeiouy])", "z"),
    (r"h", ""),
    (r"eau|au", "o"),
    (r"ai|ei", "e"),
    (r"[ae][nm](?![aeiouynm])", "A"),
    (r"[iy]n(?![aeiouyn])|ain|ein|un(?![aeiouyn])", "I"),
    (r"o[nm](?![aeiouynm])", "O"),
    (r"ou", "U"),
    (r"oi", "wa"),
    (r"y", "i"),
    (r"w", "v"),
    (r"x", "ks"),
    (r"([a-zA-Z])\1+", r"\1"),
    (r"(?<=[a-zA-Z])[estdxpz]+\b", ""),  # letters not heard at the end of a word
]


def sound_key(text: str) -> str:
    """How a French text sounds, roughly: words spelt as they are heard.

    >>> sound_key("carte d'identité"), sound_key("carte didentitée"), sound_key("camp d'identité")
    ('kar didAti', 'kar didAti', 'kA didAti')
    """
    key = fold_accents(text.lower())
    for pattern, replacement in SOUNDS:
        key = re.sub(pattern, replacement, key)
    return " ".join(key.split())


class Topics:
    """The town's topics, and the one a transcript is closest to by meaning or by sound."""

    def __init__(self, names: Iterable[str], embedder: Any, min_meaning: float, min_sound: float, town_name: str = ""):
        self.names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
        self.embedder, self.min_meaning, self.min_sound = embedder, min_meaning, min_sound
        # A topic is heard by any of its parts ("carte d'identité et passeport" by "carte d'identité" alone), but
        # not by the town's own name, which callers say about everything ("la mairie de Valbourg…").
        town = sound_key(town_name)
        self.keys = [
            [k for k in map(sound_key, (n, *PARTS.split(n))) if len(k) >= 4 and not (town and k in town)]
            for n in self.names
        ]
        self.vectors = np.asarray(embedder.embed_documents(self.names)) if self.names and embedder else None

    @staticmethod
    def of_town(town: dict[str, Any], titles: Iterable[str]) -> list[str]:
        """The services' topics (comma-separated in ``config/town.yaml``) and the short document titles."""
        named = [t for s in (town.get("services") or {}).values() for t in str(s.get("topics", "")).split(",")]
        short = [t for t in titles if len(t.split()) <= MAX_TOPIC_WORDS]
        return [re.sub(r"\s+", " ", t).strip() for t in [*named, *short]]

    def closest(self, transcript: str) -> str | None:
        """The topic the transcript is about, or None when none is close enough by meaning or by sound."""
        if not self.names or not transcript.strip():
            return None
        heard = sound_key(transcript)
        sound = [max((fuzz.partial_ratio(k, heard) / 100 for k in keys), default=0.0) for keys in self.keys]
        best = int(np.argmax(sound))
        if sound[best] >= self.min_sound:
            return self.names[best]
        if self.vectors is None:
            return None
        meaning = self.vectors @ np.asarray(self.embedder.embed_query(transcript))
        best = int(np.argmax(meaning))
        return self.names[best] if float(meaning[best]) >= self.min_meaning else None
