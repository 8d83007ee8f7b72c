"""OutputGuard: nothing reaches the resident that the cited passage does not support."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date

from bot.answer.claims import (
    adds_to,
    contradicts_source,
    dates_a_future_event_from_the_past,
    echoes_the_question,
    figure_tied_to_the_question,
    rows_for_the_situation,
    rows_named_by,
    unsupported_words,
    yes_or_no,
)
from bot.answer.extracts import Unit, as_answer, made_whole, number_units
from bot.answer.outcomes import EndTurn, Outcome
from bot.answer.textmatch import (
    MASKED,
    content_terms,
    figures,
    quantities,
    unsupported_figures,
    verbatim_pieces,
    without_personal_clauses,
)
from bot.answer.turn import Citation, Passage, Turn
from bot.text import EMAIL, PHONE, normalize

MIN_ANSWER_WORDS = 4
# Sentences quoted from one passage: a rule often takes two (the rule, then its condition or exception) and a
# third carries what the first two point to. On dev, 3 rather than 2 gave 2 more right answers and no fewer; 4
# no more than 3; answers grew by 8 % on average.
MAX_QUOTED = 3
# Words that ask for a fact rather than name a topic: a sentence sharing only these with a question is not about it.
_FACT_WORDS = content_terms(
    "horaires heure heures ouvert ouverte ouvre ouverture fermé fermée ferme prix tarif tarifs coût coûte combien "
    "coûtent montant payer paye payant payante gratuit gratuite téléphone numéro appeler joindre mail courriel "
    "contacter"
)
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


def supporting_sentences(
    passage: Passage, answer: str, question: str, max_sentences: int = MAX_QUOTED, or_first: bool = True
) -> list[str]:
    """The passage's sentence(s) or table row(s) that best support the answer, verbatim, in their order.

    Shared figures count most, and so does stating the kind of fact the question asks for and the answer does
    not (a price, an hour, a contact: "Non." to "est-ce payant ?" is supported by "… est gratuite."), then
    shared topic words; a sentence scoring under half the best is dropped. A question or a lead-in line is never
    chosen while the passage has a statement. When no sentence shares anything, the first is returned, or none
    if not ``or_first``.
    """
    units = number_units([passage])
    found = [u.text for u in units]
    # A question or a lead-in ("Tarifs :") says nothing by itself: never the supporting sentence if another is.
    found = [s for s in found if not s.rstrip().endswith(("?", ":"))] or found
    answer_figures, answer_terms = figures(answer), content_terms(answer) | content_terms(question)
    # The kind of fact asked for and not in the answer ("Non." to "est-ce payant ?"): the sentence stating it
    facts = [holds for kind in asked_facts(question) if not (holds := ASKED_FACTS[kind][1])(normalize(answer))]
    topic = _topic(question)  # and about the question's topic, not any price of the page
    scores = [
        3 * len(figures(s) & answer_figures)
        + 3 * bool(topic & content_terms(s) and any(holds(normalize(s)) for holds in facts))
        + len(content_terms(s) & answer_terms)
        for s in found
    ]
    best = max(scores)
    ranked = sorted(range(len(found)), key=lambda i: scores[i], reverse=True)[:max_sentences]
    kept = [i for i in ranked if scores[i] > 0 and scores[i] * 2 >= best]
    if not kept:  # nothing in the passage bears on the answer: one sentence, not a whole table, is shown
        return [found[ranked[0]]] if or_first else []
    chosen = {found[i] for i in kept}
    # Read whole: a sentence that points back comes with the one it points to, a list item with its list.
    return [u.text for u in made_whole([u.number for u in units if u.text in chosen], units)] or [found[kept[0]]]


def _asked(question: str) -> str:
    """What the resident asks, not what they told about themselves ("mon mail est [courriel]"), normalised."""
    return normalize(MASKED.sub(" ", without_personal_clauses(question)))


def asked_facts(question: str) -> list[str]:
    """The kinds of fact (``ASKED_FACTS``) the question asks for."""
    asked = _asked(question)
    return [kind for kind, (asks, _) in ASKED_FACTS.items() if asks.search(asked)]


def _topic(question: str) -> set[str]:
    """The question's topic words: its content words less those that ask for a fact ("horaires", "payant")."""
    return content_terms(question) - _FACT_WORDS


def _stating_the_fact(
    passages: list[Passage], holds: Callable[[str], bool], question: str
) -> list[tuple[Passage, list[str]]]:
    """The sentence or row of the passages that states the kind of fact asked for (``holds``) about the
    question's topic, read whole, with its passage; none when no such sentence is about that topic.

    The topic is the question's words once those that ask for the fact ("horaires", "payant", "téléphone") are
    set aside; the sentence, with its passage's title and headings, must name more than half of them (a pool's
    hours are not in a waste-collection timetable, a gym's Sunday is not the waste centre's).
    """
    topic = _topic(question)
    if not topic:
        return []
    best: tuple[int, Passage, Unit, list[Unit]] | None = None
    for passage in passages:
        units = number_units([passage])
        around = content_terms(" ".join([passage.title, *passage.headings]))
        for unit in units:
            named = topic & (content_terms(unit.text) | around)
            stated = holds(normalize(unit.text)) and 2 * len(named) > len(topic)
            if stated and (best is None or len(named) > best[0]):
                best = (len(named), passage, unit, units)
    if best is None:
        return []
    _, passage, unit, units = best
    return [(passage, [u.text for u in made_whole([unit.number], units)])]


def _rows_named(turn: Turn, text: str) -> list[str]:
    """The table rows the question names in words; a follow-up's own words first: "et pour quelqu'un de
    l'extérieur ?", read after a question about a resident, names the row of the outsider, not both."""
    before = str(turn.trace.get("follow_up_of", "")).rstrip()
    own = turn.question[len(before) :] if before and turn.question.startswith(before) else ""
    return (own and rows_named_by(own, text)) or rows_named_by(turn.question, text)


def _citation(passage: Passage, quoted: list[str]) -> Citation:
    """What the resident sees under an answer: the passage's document and the sentences quoted from it."""
    quote = " […] ".join(verbatim_pieces(passage.text, quoted))  # "[…]" only where the text goes on between
    return Citation(passage.title, passage.source, passage.url, passage.date, quote=quote)


def _by_document(quoted: list[tuple[Passage, list[str]]]) -> list[tuple[Passage, list[str]]]:
    """The quoted sentences grouped by document (its first passage stands for it), each once, in the order given."""
    by_source: dict[str, tuple[Passage, list[str]]] = {}
    for passage, sentences in quoted:
        kept = by_source.setdefault(passage.source, (passage, []))[1]
        kept += [s for s in sentences if s not in kept]  # passages overlap: a sentence can be in two of them
    return list(by_source.values())


class OutputGuard:
    """Builds the citations, then checks what the draft claims against the cited passage.

    The draft stands only if every figure and contact is in the passage (or the town directory), every topic
    word is in the passages shown or the question (nothing said beyond what the documents were shown), it does not
    merely say yes or no in the question's own words, its yes/no agrees with the official sentence, and, when the
    question names the resident's situation ("30 ans", "15 m²"), its figures come from the row for that
    situation. Otherwise the resident sees the official sentence(s) instead (``answered_from_quote``). A past
    date never answers a question about something to come, and a question asking for a phone number or opening
    hours needs a reply that holds one: otherwise the sources do not have it (``unanswerable_no_sources``).
    """

    def __init__(self, directory: Sequence[str] = (), this_year: int | None = None):
        self.directory = " ".join(directory)  # the town's own contacts, always allowed
        self.this_year = this_year or date.today().year

    def run(self, turn: Turn) -> None:
        cited = [p for p in turn.passages if p.label in turn.cited_labels]
        if not cited:
            raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, "no cited passage")
        title = " ".join(p.title for p in cited)
        if dates_a_future_event_from_the_past(turn.draft, turn.question, self.this_year, title):
            raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, "a past date cannot answer about something to come")
        if turn.extracted:
            self._finish_extracted(turn, cited)
            self._check_asked_fact(turn)
            return
        cited = self._best_supporting(turn, cited)
        support = [supporting_sentences(p, turn.draft, turn.question) for p in cited]
        # The rows of the resident's situation, given by a figure ("30 ans", "tranche 2") or named in words
        # ("quelqu'un de l'extérieur"): a figure of the draft from another row answers another case.
        situation = rows_for_the_situation(turn.question, cited[0].text)
        rows = situation or _rows_named(turn, cited[0].text)
        problems = self._problems(turn, cited, support[0], rows)
        if "wrong row" in problems:
            support[0] = rows
        quoted = list(zip(cited, support, strict=True))
        if not situation:  # a situation's row is its whole answer: the document's other cases are not read
            rest = self._rest_of_the_document(turn, cited, support)
            quoted += rest
            turn.cited_labels += [p.label for p, _ in rest]
        documents = _by_document(quoted)  # one citation per document
        turn.citations = [_citation(passage, sentences) for passage, sentences in documents]
        turn.trace["output_guard"] = {"problems": problems}
        quote = " […] ".join(c.quote for c in turn.citations)
        if problems:
            turn.answer = quote
            turn.outcome = Outcome.ANSWERED_FROM_QUOTE
        else:
            turn.answer = turn.draft
            turn.outcome = Outcome.ANSWERED
            if len(turn.draft.split()) < MIN_ANSWER_WORDS:  # "Non", "45 €": a fragment needs its sentence
                turn.answer = f"{turn.draft.rstrip('. ')}. {OFFICIAL_LEAD} « {quote} »"
            elif adds_to(quote, turn.draft):  # the official words say more than the model's: let them speak
                said = normalize(turn.draft)  # a sentence the model copied verbatim is not read twice
                more = " […] ".join(s for _, sentences in documents for s in sentences if normalize(s) not in said)
                turn.answer = f"{turn.draft.rstrip('. ')}. {OFFICIAL_LEAD} « {more or quote} »"
        self._check_asked_fact(turn)

    @staticmethod
    def _finish_extracted(turn: Turn, cited: list[Passage]) -> None:
        """An extractive draft is the official sentences themselves: what remains to check is that its figures
        are those of the resident's situation, when the question gives one ("16 ans", "tranche 2")."""
        label_of: dict[str, str] = {}  # the rows of the resident's situation, with their passage
        for passage in cited:
            for row in rows_for_the_situation(turn.question, passage.text):
                label_of.setdefault(row, passage.label)
        asked = quantities(turn.question)
        claims = [(label, text) for label, text in turn.extracted if {q for q in quantities(text) - asked if q[1]}]
        if label_of and claims:
            if any(text in label_of for _, text in claims):  # keep the resident's row, drop the other cases
                turn.extracted = [(lb, t) for lb, t in turn.extracted if t in label_of or (lb, t) not in claims]
            else:  # the model read another row: the resident's own row answers
                turn.extracted = [(label, text) for text, label in label_of.items()]
                turn.trace["output_guard"] = {"problems": ["wrong row"]}
        turn.cited_labels = list(dict.fromkeys(label for label, _ in turn.extracted))
        turn.draft = turn.answer = as_answer([text for _, text in turn.extracted])
        turn.citations = [
            _citation(p, [text for label, text in turn.extracted if label == p.label])
            for p in turn.passages
            if p.label in turn.cited_labels
        ]
        turn.outcome = Outcome.ANSWERED

    def _problems(self, turn: Turn, cited: list[Passage], support: list[str], situation: list[str]) -> list[str]:
        """Why the draft cannot be shown as it is (empty: it can)."""
        draft, question = turn.draft, turn.question
        problems = [f"unsupported {figure}" for figure in sorted(self._unsupported(draft, cited))]
        # The kind of fact ("ouvre", "coûte", "appelez") is no claim: its value, a figure or contact, is checked.
        evidence = self._evidence(turn.passages)
        if said_beyond := unsupported_words(draft, evidence, question) - _FACT_WORDS:
            problems.append(f"words no passage holds: {', '.join(sorted(said_beyond))}")
        if tied := figure_tied_to_the_question(draft, evidence, question, _FACT_WORDS):
            problems.append(f"a figure tied to words only the question holds: {', '.join(sorted(tied))}")
        if yes_or_no(draft) and echoes_the_question(draft, question):
            problems.append("a yes/no in the question's own words")
        if contradicts_source(draft, support):
            problems.append("a yes/no the official sentence contradicts")
        asked = quantities(question)  # "17 ans" restated is not a claim; "17 €" is
        claimed = {number for number, unit in quantities(draft) - asked}
        if situation and claimed and not any(claimed <= figures(row) for row in situation):
            problems.append("wrong row")
        return problems

    @staticmethod
    def _check_asked_fact(turn: Turn) -> None:
        """A reply without the kind of fact asked for does not answer: the passages' own sentence that states
        it about the question's topic answers instead, and without one the sources do not have it."""
        question = _asked(turn.question)
        for kind in asked_facts(turn.question):
            holds = ASKED_FACTS[kind][1]
            if not holds(normalize(turn.answer)):
                stated = _stating_the_fact(turn.passages, holds, question)
                if not stated:
                    raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, f"asked for {kind}, the reply holds none")
                turn.citations = [_citation(passage, sentences) for passage, sentences in stated]
                turn.cited_labels = [passage.label for passage, _ in stated]
                turn.answer = " […] ".join(c.quote for c in turn.citations)
                turn.outcome = Outcome.ANSWERED_FROM_QUOTE
                turn.trace["asked_fact_quoted"] = kind

    def _unsupported(self, draft: str, passages: list[Passage]) -> set[str]:
        """Figures and contacts of ``draft`` found neither in ``passages`` nor in the town directory."""
        return unsupported_figures(draft, self._evidence(passages))

    def _evidence(self, passages: list[Passage]) -> str:
        """What a draft may rest on: the passages' titles, headings and texts, and the town's directory."""
        return " ".join([*(p.evidence for p in passages), self.directory])

    @staticmethod
    def _rest_of_the_document(
        turn: Turn, cited: list[Passage], quoted: list[list[str]]
    ) -> list[tuple[Passage, list[str]]]:
        """The other passages shown from the cited document, with their sentences that bear on the question.

        A document is cut into passages, so a rule and its conditions ("sous certaines conditions" … "Les 2
        conditions suivantes") can sit in two of them: the sentences of the document's other retrieved passages
        that share words or figures with the question or the draft are read too.
        """
        documents = {p.source for p in cited}
        seen = {sentence for sentences in quoted for sentence in sentences}
        found = []
        for passage in (p for p in turn.passages if p not in cited and p.source in documents):
            bearing = [
                s for s in supporting_sentences(passage, turn.draft, turn.question, or_first=False) if s not in seen
            ]
            if bearing:
                found.append((passage, bearing))
                seen.update(bearing)
        return found

    def _best_supporting(self, turn: Turn, cited: list[Passage]) -> list[Passage]:
        """The small model often cites the wrong label: if another passage it was shown holds every figure
        of the draft and the cited one does not, that passage is the true source."""
        if not self._unsupported(turn.draft, cited):
            return cited
        for passage in turn.passages:
            if passage not in cited and not self._unsupported(turn.draft, [passage]):
                turn.cited_labels = [passage.label]
                turn.trace["citation_relabelled"] = True
                return [passage]
        return cited
