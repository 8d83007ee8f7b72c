"""OutputGuard: the resident reads what the evidence says, in the model's words only where they say the same.

The evidence (``turn.evidence``) is what the verifier found answering among the passages. The guard runs the checks
named in ``config/thresholds.yaml`` (``guard.checks``) on the model's draft, in order; each returns a typed problem
or nothing. A draft with no problem is shown, its citation the evidence sentences verbatim. A draft with one is
replaced by the evidence itself, read as sentences (``answered_from_quote``): an official sentence is shown as the
answer only when the verifier said it answers. Two ends are decided here too: a past date never answers a question
about something to come, and a question asking for a phone number, opening hours or a price needs a reply holding
one (``unanswerable_no_sources`` otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from bot.answer.claims import (
    contradicts_source,
    dates_a_future_event_from_the_past,
    echoes_the_question,
    figure_tied_to_the_question,
    rows_for_the_situation,
    unsupported_words,
)
from bot.answer.extracts import Unit, made_whole, number_units, readable
from bot.answer.outcomes import EndTurn, Outcome
from bot.answer.textmatch import (
    figures,
    sentences,
    unsupported_figures,
    verbatim_pieces,
    without_personal_clauses,
)
from bot.answer.turn import Citation, Evidence, Passage, Turn
from bot.engines.verifier import Verifier
from bot.language.numerals import quantities
from bot.language.words import FACT_WORDS, MASKED, content_terms
from bot.language.yes_no import yes_or_no
from bot.text import EMAIL, PHONE, normalize

MIN_ANSWER_WORDS = 4  # "86 €", "Non": a fragment is followed by the evidence it comes from
OFFICIAL_LEAD = "Le document officiel précise :"
# A question that asks for one of these kinds of fact is answered only by a reply that contains one.
ASKED_FACTS: dict[str, tuple[re.Pattern[str], Callable[[str], bool]]] = {
    "contact": (
        re.compile(
            r"t[ée]l[ée]phone|num[ée]ro (de|pour) (t[ée]l|joindre|appeler)|appeler|joindre|\b(e-?)?mail\b|courriel"
        ),
        lambda text: bool(PHONE.search(text) or EMAIL.search(text)),
    ),
    "price": (
        # "combien coûte", "ça coûte combien", "cb ça coute", "quel montant", "combien faut-il payer"
        re.compile(r"\bco[uû]t(e|ent)?\b|\bprix\b|\btarifs?\b|payante?\b|\bmontant\b|combien\b.{0,30}\bpa[yi]e"),
        lambda text: bool(re.search(r"\d\s*(€|euros?)|gratuit|payant|\d+[.,]\d{2}", text)),
    ),
    "hours": (
        re.compile(r"horaires?|heures? d.ouverture|[àa] quelle heure|ouvert|ferm[ée]"),
        # "9 h", "14h30", "10 heures": an hour; "80 000 habitants" is not one.
        lambda text: bool(re.search(r"\b\d{1,2}\s*(?:h(?:\d{2})?\b|heures?\b)|\d{1,2}:\d{2}|ferm[ée]|ouvert", text)),
    ),
}


@dataclass(frozen=True)
class Problem:
    """Why a draft cannot be shown as it is: the check that found it, and what it found."""

    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.detail}"


@dataclass(frozen=True)
class Draft:
    """What the checks read: the model's text, the question, the evidence and the passages it was shown."""

    text: str
    question: str
    evidence: list[Evidence]
    passages: list[Passage]
    directory: str
    verifier: Verifier | None
    min_entailed: float = 0.5  # a statement stands when an evidence sentence entails it at least this much
    max_contradicted: float = 0.5  # and none contradicts it this much or more

    @property
    def evidence_sentences(self) -> list[str]:
        return [e.text for e in self.evidence]


Check = Callable[[Draft], Problem | None]


def figures_in_evidence(draft: Draft) -> Problem | None:
    """Every number, amount, date, hour, phone number, e-mail and URL of the draft is in an evidence sentence (as
    the verifier reads it: with its title, headings and lead-in) or in the town's directory. A figure from another
    row, case or paragraph of the same passage is not the answer, even when the draft is a bare "96 €" in which
    the *supports* check finds no statement to read (a rule of form: figures compared as figures)."""
    readings = " ".join([*(e.reading for e in draft.evidence), draft.directory])
    missing = unsupported_figures(draft.text, readings)
    return Problem("figures_in_evidence", ", ".join(sorted(missing))) if missing else None


def supported_by_evidence(draft: Draft) -> Problem | None:
    """Every statement of the draft follows from an evidence sentence and none contradicts it (the verifier's
    *supports*: same polarity, same figure, same case, same authority)."""
    if draft.verifier is None or not draft.evidence:
        return None
    statements = [s for s in sentences(draft.text) if content_terms(s) - FACT_WORDS or yes_or_no(s)]
    if not statements:
        return None
    readings = [e.reading for e in draft.evidence]
    pairs = [(s, r) for s in statements for r in readings]
    probabilities = draft.verifier.supports(pairs)
    for n, statement in enumerate(statements):
        rows = probabilities[n * len(readings) : (n + 1) * len(readings)]
        if float(rows[:, 1].max()) >= draft.max_contradicted:
            return Problem("supported_by_evidence", f"contradicted: {statement[:80]}")
        if float(rows[:, 0].max()) < draft.min_entailed:
            return Problem("supported_by_evidence", f"not stated: {statement[:80]}")
    return None


def row_of_the_situation(draft: Draft) -> Problem | None:
    """When the question gives the resident's situation ("30 ans", "tranche 2"), the draft's figures come from
    that situation's row (a rule of form on quantities)."""
    rows = [r for p in draft.passages for r in rows_for_the_situation(draft.question, p.text)]
    claimed = {number for number, _ in quantities(draft.text) - quantities(draft.question)}
    if rows and claimed and not any(claimed <= figures(row) for row in rows):
        return Problem("row_of_the_situation", "a figure from another row than the resident's")
    return None


def all_the_cases(draft: Draft) -> Problem | None:
    """When the evidence is several rows of a table that differ by their figures (a price by age, a fee by
    quotient) and the question names no situation, a draft giving one row's figure answers one case as if it were
    the only one: the rows answer, each case read (a rule of form on the table's rows)."""
    rows = [e.text for e in draft.evidence if " ; " in e.text]
    if len(rows) < 2 or any(rows_for_the_situation(draft.question, p.text) for p in draft.passages):
        return None
    claimed = {number for number, _ in quantities(draft.text) - quantities(draft.question)}
    figures_of = [{number for number, _ in quantities(row)} for row in rows]
    if claimed and len({frozenset(f) for f in figures_of}) > 1 and not all(claimed & f for f in figures_of):
        return Problem("all_the_cases", "one case's figure where the rows give several")
    return None


def words_in_passages(draft: Draft) -> Problem | None:
    """(Hand-written, kept for measurement.) Every topic word of the draft is in the passages or the question."""
    evidence = " ".join([*(p.evidence for p in draft.passages), draft.directory])
    said = unsupported_words(draft.text, evidence, draft.question) - FACT_WORDS
    return Problem("words_in_passages", ", ".join(sorted(said))) if said else None


def figure_not_tied_to_the_question(draft: Draft) -> Problem | None:
    """(Hand-written, kept for measurement.) A figure is not tied to words only the question holds."""
    evidence = " ".join([*(p.evidence for p in draft.passages), draft.directory])
    tied = figure_tied_to_the_question(draft.text, evidence, draft.question, FACT_WORDS)
    return Problem("figure_not_tied_to_the_question", ", ".join(sorted(tied))) if tied else None


def yes_no_of_the_document(draft: Draft) -> Problem | None:
    """(Hand-written, kept for measurement.) A yes/no neither merely echoes the question nor contradicts the
    evidence's own "Oui"/"Non"."""
    if yes_or_no(draft.text) and echoes_the_question(draft.text, draft.question):
        return Problem("yes_no_of_the_document", "a yes/no in the question's own words")
    if contradicts_source(draft.text, draft.evidence_sentences):
        return Problem("yes_no_of_the_document", "a yes/no the official sentence contradicts")
    return None


CHECKS: dict[str, Check] = {
    "figures_in_evidence": figures_in_evidence,
    "supported_by_evidence": supported_by_evidence,
    "row_of_the_situation": row_of_the_situation,
    "all_the_cases": all_the_cases,
    "words_in_passages": words_in_passages,
    "figure_not_tied_to_the_question": figure_not_tied_to_the_question,
    "yes_no_of_the_document": yes_no_of_the_document,
}
DEFAULT_CHECKS = ("figures_in_evidence", "supported_by_evidence", "row_of_the_situation", "all_the_cases")


def _asked(question: str) -> str:
    """What the resident asks, not what they told about themselves ("mon mail est [courriel]"), normalised."""
    return normalize(MASKED.sub(" ", without_personal_clauses(question)))


def asked_facts(question: str) -> list[str]:
    """The kinds of fact (``ASKED_FACTS``) the question asks for."""
    asked = _asked(question)
    return [kind for kind, (asks, _) in ASKED_FACTS.items() if asks.search(asked)]


def quoted_units(turn: Turn) -> list[tuple[Passage, list[Unit]]]:
    """The evidence sentences made whole (a row with its table's caption, an item with its list, a sentence that
    points back with the one it points to), grouped by passage, in the passages' order."""
    units = number_units(turn.passages)
    label_of = {p.chunk_id: p.label for p in turn.passages}
    chosen = [
        u.number
        for e in turn.evidence
        for u in units
        if label_of.get(e.chunk_id) == u.label and u.position == e.position
    ]
    whole = made_whole(chosen, units)
    grouped = []
    for passage in turn.passages:
        own = [u for u in whole if u.label == passage.label]
        if own:
            grouped.append((passage, own))
    return grouped


def _citations(quoted: list[tuple[Passage, list[Unit]]]) -> list[Citation]:
    """One citation per document, its quote the sentences verbatim ("[…]" only where the text goes on between)."""
    by_source: dict[str, tuple[Passage, list[str]]] = {}
    for passage, units in quoted:
        kept = by_source.setdefault(passage.source, (passage, []))[1]
        kept += [u.text for u in units if u.text not in kept]
    return [
        Citation(p.title, p.source, p.url, p.date, quote=" […] ".join(verbatim_pieces(p.text, texts)))
        for p, texts in by_source.values()
    ]


class OutputGuard:
    """Runs ``checks`` on the draft against the evidence; shows the draft, or the evidence read as sentences."""

    def __init__(
        self,
        directory: Sequence[str] = (),
        this_year: int | None = None,
        verifier: Verifier | None = None,
        checks: Sequence[str] = DEFAULT_CHECKS,
        min_entailed: float = 0.5,
        max_contradicted: float = 0.5,
    ):
        unknown = [c for c in checks if c not in CHECKS]
        if unknown:
            raise ValueError(f"guard.checks: unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}")
        self.directory = " ".join(directory)  # the town's own contacts, always allowed
        self.this_year = this_year or date.today().year
        self.verifier, self.checks = verifier, tuple(checks)
        self.min_entailed, self.max_contradicted = min_entailed, max_contradicted

    def run(self, turn: Turn) -> None:
        if not turn.evidence:
            raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, "no evidence answers the question")
        title = " ".join(p.title for p in turn.passages if p.chunk_id in {e.chunk_id for e in turn.evidence})
        said = turn.draft or " ".join(e.text for e in turn.evidence)
        if dates_a_future_event_from_the_past(said, turn.question, self.this_year, title):
            raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, "a past date cannot answer about something to come")
        quoted = quoted_units(turn)
        turn.citations = _citations(quoted)
        turn.cited_labels = [p.label for p, _ in quoted]
        official = readable([u.text for _, units in quoted for u in units])
        problems = self._problems(turn) if turn.draft else [Problem("draft", "no draft: the evidence answers")]
        turn.trace["output_guard"] = {"problems": [str(p) for p in problems], "checks": list(self.checks)}
        if problems:
            turn.answer, turn.outcome = official, Outcome.ANSWERED_FROM_QUOTE
        else:
            turn.answer, turn.outcome = turn.draft, Outcome.ANSWERED
            if len(turn.draft.split()) < MIN_ANSWER_WORDS:  # "Non", "45 €": a fragment needs its sentence
                turn.answer = f"{turn.draft.rstrip('. ')}. {OFFICIAL_LEAD} « {official} »"
        self._check_asked_fact(turn)

    def _problems(self, turn: Turn) -> list[Problem]:
        draft = Draft(
            turn.draft,
            turn.question,
            turn.evidence,
            turn.passages,
            self.directory,
            self.verifier,
            self.min_entailed,
            self.max_contradicted,
        )
        found = []
        for name in self.checks:
            problem = CHECKS[name](draft)
            if problem:
                found.append(problem)
                break  # the first problem decides: the evidence answers instead
        return found

    @staticmethod
    def _check_asked_fact(turn: Turn) -> None:
        """A reply without the kind of fact asked for (a phone number, hours, a price) does not answer it."""
        for kind in asked_facts(turn.question):
            if not ASKED_FACTS[kind][1](normalize(turn.answer)):
                raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, f"asked for {kind}, the reply holds none")
