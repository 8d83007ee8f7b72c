"""OutputGuard on its own: the draft stands when the evidence supports it, else the evidence answers, read as
sentences; the verifier is a scripted fake (its real judgement is measured end to end and in its report)."""

from dataclasses import replace

import numpy as np
import pytest

from bot.answer.candidates import candidates, evidence_of
from bot.answer.outcomes import EndTurn, Outcome
from bot.answer.steps.output_guard import Draft, OutputGuard, Problem, supported_by_evidence
from bot.answer.turn import Passage, Turn
from bot.engines.verifier import FakeVerifier
from tests.unit.test_steps import HOURS, PASSPORT

ADULT = "Titre : Passeport ; Situation : Majeur ; Prix : 86 €"


class Supports(FakeVerifier):
    """Says "entailed" unless the statement holds one of ``contradicted``."""

    def __init__(self, *contradicted: str):
        super().__init__()
        self.contradicted = contradicted

    def supports(self, pairs):
        return np.asarray(
            [[0.05, 0.9, 0.05] if any(c in s for c in self.contradicted) else [0.9, 0.05, 0.05] for s, _ in pairs],
            dtype=np.float32,
        )


def _turn(question: str, passage: Passage, evidence: list[str], draft: str) -> Turn:
    """A turn whose verifier kept ``evidence`` (texts of ``passage``'s sentences) and whose model wrote ``draft``."""
    kept = [evidence_of(c, 0.9) for c in candidates([passage]) if c.text in evidence]
    assert len(kept) == len(evidence), "evidence must be sentences of the passage"
    return Turn(question=question, passages=[passage], evidence=kept, draft=draft)


def _guarded(turn: Turn, verifier=None, **kwargs) -> Turn:
    OutputGuard(verifier=verifier or Supports(), this_year=2026, **kwargs).run(turn)
    return turn


def test_a_supported_draft_stands_and_its_citation_is_the_evidence_verbatim():
    turn = _guarded(_turn("Prix du passeport majeur ?", PASSPORT, [ADULT], "Un passeport pour un majeur coûte 86 €."))
    assert turn.outcome is Outcome.ANSWERED and turn.answer == "Un passeport pour un majeur coûte 86 €."
    [citation] = turn.citations
    assert citation.source == "cip.html" and ADULT in citation.quote and citation.quote in PASSPORT.text


def test_an_invented_figure_gives_the_evidence_read_as_a_sentence():
    turn = _guarded(
        _turn("Prix du passeport ?", PASSPORT, [ADULT], "Le passeport coûte 96 €, appelez le 01 23 45 67 89.")
    )
    assert turn.outcome is Outcome.ANSWERED_FROM_QUOTE and turn.answer == "Passeport, majeur : 86 €."
    assert turn.trace["output_guard"]["problems"] == ["figures_in_evidence: 0123456789, 96"]


def test_a_bare_figure_from_another_row_of_the_passage_gives_the_evidence():
    """ "17 €" stands in the passage, on the minor's row; the verifier kept the adult's row: the draft's figure is
    not the evidence's, though there is no statement for the *supports* check to read."""
    turn = _guarded(_turn("Prix du passeport pour un adulte ?", PASSPORT, [ADULT], "17 €"))
    assert turn.outcome is Outcome.ANSWERED_FROM_QUOTE and turn.answer == "Passeport, majeur : 86 €."
    assert turn.trace["output_guard"]["problems"] == ["figures_in_evidence: 17"]
    turn = _guarded(_turn("Prix du passeport pour un adulte ?", PASSPORT, [ADULT], "86 €"))
    assert turn.outcome is Outcome.ANSWERED and turn.answer.startswith("86 €.")


def test_a_statement_the_evidence_contradicts_never_reaches_the_resident():
    burning = replace(HOURS, text="Non, il est interdit de brûler des déchets verts chez soi.")
    evidence = ["Non, il est interdit de brûler des déchets verts chez soi."]
    draft = "Oui, vous pouvez les brûler au fond du jardin."
    turn = _guarded(_turn("Peut-on brûler les feuilles ?", burning, evidence, draft), Supports("Oui, vous pouvez"))
    assert turn.outcome is Outcome.ANSWERED_FROM_QUOTE and turn.answer.startswith("Non, il est interdit")
    assert turn.trace["output_guard"]["problems"][0].startswith("supported_by_evidence: contradicted")


def test_a_statement_no_evidence_entails_is_not_stated():
    class Unstated(FakeVerifier):
        def supports(self, pairs):
            return np.asarray([[0.2, 0.1, 0.7]] * len(pairs), dtype=np.float32)

    turn = _turn("Prix du passeport ?", PASSPORT, [ADULT], "Le passeport coûte 86 € et se retire en préfecture.")
    problem = supported_by_evidence(Draft(turn.draft, turn.question, turn.evidence, turn.passages, "", Unstated()))
    assert problem == Problem(
        "supported_by_evidence", "not stated: Le passeport coûte 86 € et se retire en préfecture."
    )


def test_a_fragment_is_followed_by_the_evidence_and_no_draft_shows_the_evidence():
    fragment = _guarded(_turn("Prix du passeport majeur ?", PASSPORT, [ADULT], "86 €"))
    assert fragment.outcome is Outcome.ANSWERED
    assert fragment.answer == "86 €. Le document officiel précise : « Passeport, majeur : 86 €. »"
    silent = _guarded(_turn("Prix du passeport majeur ?", PASSPORT, [ADULT], ""))  # the model said "aucune"
    assert silent.outcome is Outcome.ANSWERED_FROM_QUOTE and silent.answer == "Passeport, majeur : 86 €."


ROWS = replace(
    PASSPORT,
    text="Tableau : Prix\n- Situation : Mineur de 15 ans et plus ; Prix : 42 €\n"
    "- Situation : Mineur de moins de 15 ans ; Prix : 17 €",
)


def test_a_figure_from_another_row_than_the_residents_situation_is_not_shown():
    older = "Situation : Mineur de 15 ans et plus ; Prix : 42 €"
    turn = _guarded(_turn("Passeport pour mon fils de 17 ans, combien ?", ROWS, [older], "Le passeport coûte 17 €."))
    assert turn.outcome is Outcome.ANSWERED_FROM_QUOTE and "42 €" in turn.answer and "17 €" not in turn.answer
    assert turn.trace["output_guard"]["problems"] == ["figures_in_evidence: 17"]
    # Both rows kept as evidence: the figure is in the evidence, but not on the resident's row.
    both = _turn("Passeport pour mon fils de 17 ans, combien ?", ROWS, [older, ROWS.text.splitlines()[2][2:]], "17 €.")
    assert _guarded(both).trace["output_guard"]["problems"] == [
        "row_of_the_situation: a figure from another row than the resident's"
    ]


def test_a_list_item_is_quoted_with_its_lead_in_and_the_other_items():
    papers = replace(
        HOURS,
        text="L'enfant qui voyage sans ses parents doit avoir les documents suivants :\n"
        "- Formulaire cerfa n°15646 signé par un parent\n- Pièce d'identité du mineur : carte ou passeport\n"
        "Le formulaire est gratuit.",
    )
    turn = _guarded(
        _turn(
            "Quel papier pour que mon fils voyage seul ?", papers, ["Formulaire cerfa n°15646 signé par un parent"], ""
        )
    )
    [citation] = turn.citations
    assert citation.quote.startswith("L'enfant qui voyage sans ses parents doit avoir les documents suivants :")
    assert "Pièce d'identité du mineur" in citation.quote and "gratuit" not in citation.quote


def test_the_town_directory_is_whitelisted_and_nothing_else():
    directory = ["Accueil de la mairie : 01 99 00 12 34"]
    allowed = _turn(
        "Horaires du samedi ?", HOURS, ["Le samedi : de 9 h à 12 h."], "De 9 h à 12 h ; appelez le 01 99 00 12 34."
    )
    assert _guarded(allowed, directory=directory).outcome is Outcome.ANSWERED
    other = _turn(
        "Horaires du samedi ?", HOURS, ["Le samedi : de 9 h à 12 h."], "De 9 h à 12 h ; appelez le 01 23 45 67 89."
    )
    assert _guarded(other, directory=directory).outcome is Outcome.ANSWERED_FROM_QUOTE


def test_a_past_date_does_not_answer_about_something_to_come():
    fair = replace(HOURS, title="Fête de la ville 2019", text="La fête aura lieu le 14 juin 2019 sur la place.")
    turn = _turn(
        "Quand a lieu la prochaine fête de la ville ?",
        fair,
        ["La fête aura lieu le 14 juin 2019 sur la place."],
        "La fête aura lieu le 14 juin 2019.",
    )
    with pytest.raises(EndTurn) as end:
        _guarded(turn)
    assert end.value.outcome is Outcome.UNANSWERABLE_NO_SOURCES


@pytest.mark.parametrize("question", ["Quel est le numéro de téléphone de l'état civil ?", "Combien coûte l'entrée ?"])
def test_a_reply_without_the_kind_of_fact_asked_for_does_not_answer(question):
    civil = replace(HOURS, text="Les actes sont délivrés à l'accueil de la mairie.")
    turn = _turn(question, civil, ["Les actes sont délivrés à l'accueil de la mairie."], "Adressez-vous à l'accueil.")
    with pytest.raises(EndTurn) as end:
        _guarded(turn)
    assert end.value.outcome is Outcome.UNANSWERABLE_NO_SOURCES


def test_without_evidence_nothing_is_shown():
    with pytest.raises(EndTurn) as end:
        _guarded(Turn(question="Prix ?", passages=[PASSPORT], draft="86 €"))
    assert end.value.outcome is Outcome.UNANSWERABLE_NO_SOURCES


def test_an_unknown_check_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown check"):
        OutputGuard(checks=["spellcheck"])


def test_one_case_of_a_table_is_not_given_as_the_answer_when_the_question_names_none():
    rows = [
        "Situation : Mineur de 15 ans et plus ; Prix : 42 €",
        "Situation : Mineur de moins de 15 ans ; Prix : 17 €",
    ]
    turn = _guarded(_turn("Combien coûte le passeport d'un mineur ?", ROWS, rows, "Il coûte 42 €."))
    assert turn.outcome is Outcome.ANSWERED_FROM_QUOTE and "42 €" in turn.answer and "17 €" in turn.answer
    both = _guarded(_turn("Combien coûte le passeport d'un mineur ?", ROWS, rows, "42 € dès 15 ans, sinon 17 €."))
    assert both.outcome is Outcome.ANSWERED
