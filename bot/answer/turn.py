"""The typed state of one question going through the answer steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.answer.outcomes import Outcome
from bot.engines.chunk import Chunk
from bot.text import evidence


@dataclass
class Passage:
    """A retrieved chunk as the answer steps see it; ``label`` is the token the model cites (S1…Sn)."""

    label: str
    chunk_id: str
    title: str
    source: str
    url: str
    date: str
    headings: list[str]
    text: str
    dense_score: float
    lexical_score: float

    @property
    def evidence(self) -> str:
        """Title, heading path and text: what the passage says, as searched and checked."""
        return evidence(self.title, self.headings, self.text)

    @classmethod
    def from_chunk(
        cls, chunk: Chunk, label: str, text: str | None = None, dense: float = 0.0, lexical: float = 0.0
    ) -> Passage:
        """A chunk of the index as the answer steps see it; ``text`` replaces the chunk's own (read from its
        opening, say)."""
        return cls(
            label=label,
            chunk_id=chunk.id,
            title=chunk.title,
            source=chunk.source,
            url=chunk.url,
            date=chunk.date,
            headings=list(chunk.headings),
            text=chunk.text if text is None else text,
            dense_score=round(dense, 4),
            lexical_score=round(lexical, 4),
        )


@dataclass(frozen=True)
class Evidence:
    """A sentence or table row the verifier says answers the question, with its probability. It names its
    passage by chunk id, so it survives the passages being relabelled (``bot.answer.candidates.evidence_of``)."""

    chunk_id: str
    source: str
    position: int  # its rank among the sentences of its passage
    text: str  # verbatim
    reading: str  # as the verifier read it: where it is, its lead-in, the sentence
    score: float


@dataclass
class Citation:
    """What the resident sees under an answer: the document and the official sentence(s) that support it."""

    title: str
    source: str
    url: str
    date: str
    quote: str


@dataclass
class Turn:
    """One question and everything the steps learn about it.

    >>> Turn(question="Horaires ?").outcome is None
    True
    """

    question: str
    history: list[dict[str, Any]] = field(default_factory=list)
    channel: str = "web"  # web, voice, cli, eval: the voice channel gets a smaller answer budget
    passages: list[Passage] = field(default_factory=list)
    # The sentences of the passages that answer, best first (EvidenceFinder): what a quote may show.
    evidence: list[Evidence] = field(default_factory=list)
    draft: str = ""  # the model's answer before the output checks
    cited_labels: list[str] = field(default_factory=list)
    answer: str = ""
    citations: list[Citation] = field(default_factory=list)
    outcome: Outcome | None = None
    redacted: list[str] = field(default_factory=list)  # kinds of personal data masked in the question
    # Said after the answer when every source is older than the town's threshold ("D'après un document de 2014…");
    # part of ``answer`` too, kept apart so the phone can say it after a shortened answer.
    dated: str = ""
    seconds: float | None = None  # how long the steps took
    # How the answer was made (route, masked kinds, rewrite, passages' scores, checks, timings): for staff and
    # evaluation, never sent to residents. Written by the steps, never read back by a later one: state passes
    # between steps through the fields above.
    trace: dict[str, Any] = field(default_factory=dict)
    # The question's search vector, when a step before retrieval already computed it (validated answers by meaning).
    query_vector: Any = field(default=None, repr=False, compare=False)
    # Receives the draft answer as it is written (streaming channels); see ``bot.answer.streaming``.
    on_draft: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def public(self) -> PublicAnswer:
        """What a resident or a client may see of this turn; nothing of how it was made."""
        outcome = self.outcome.value if self.outcome else None
        return PublicAnswer(self.answer, outcome, list(self.citations), self.seconds)

    def to_json(self) -> dict[str, Any]:
        """The public answer object: what the API and ``guichet ask --json`` give a resident or a client.

        >>> sorted(Turn(question="q", trace={"follow_up_of": "earlier question"}).to_json())
        ['answer', 'citations', 'outcome', 'seconds']
        """
        return asdict(self.public())

    def to_trace(self) -> dict[str, Any]:
        """The public answer object and how it was made, for staff and the evaluation runner."""
        return {**self.to_json(), "trace": self.trace}


@dataclass(frozen=True)
class PublicAnswer:
    """The answer as residents and API clients receive it. Its counterpart for staff and evaluation is
    ``Turn.trace``, a separate object that never leaves the server through a residents' endpoint."""

    answer: str
    outcome: str | None
    citations: list[Citation]
    seconds: float | None
