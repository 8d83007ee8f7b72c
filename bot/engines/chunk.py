"""A passage of a document as the index stores it: the one shape ingestion writes and the answer path reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bot.text import evidence


@dataclass
class Chunk:
    """One passage of a document, with everything needed to cite it (``chunks.jsonl``, one per line).

    >>> c = Chunk("f.md#0", "f.md", "Passeport", "", "2026-01-01", ["Tarifs"], "Majeur : 86 €")
    >>> c.embedding_text()
    'title: Passeport | text: Tarifs\\nMajeur : 86 €'
    """

    id: str
    source: str
    title: str
    url: str
    date: str
    headings: list[str]
    text: str
    hash: str = field(default="")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Chunk:
        """A stored line; fields this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def evidence(self) -> str:
        """Title, heading path and text: what the passage says, as searched and checked."""
        return evidence(self.title, self.headings, self.text)

    def embedding_text(self) -> str:
        """Text given to the embedder, in EmbeddingGemma's document format."""
        return f"title: {self.title} | text: {self.heading_line()}{self.text}"

    def heading_line(self) -> str:
        return (" > ".join(self.headings) + "\n") if self.headings else ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
