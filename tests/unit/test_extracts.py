"""The passages as numbered sentences and rows, and a chosen sentence made whole by rules of form."""

import pytest

from bot.answer.extracts import as_answer, made_whole, number_units
from bot.answer.prompt import Prompt
from bot.answer.steps.answer_composer import AnswerComposer
from bot.answer.turn import Passage, Turn
from bot.engines.llm import FakeChatModel
from bot.settings import Settings
from tests.conftest import routes_neutraliser
from tests.unit.test_steps import PASSPORT


def test_a_lead_in_brings_its_rows_and_numbers_that_were_not_shown_are_dropped():
    units = number_units([PASSPORT])
    assert [u.text for u in made_whole([1], units)] == [u.text for u in units]
    assert [u.text for u in made_whole([2, 99, 0], units)] == [units[1].text]
    assert as_answer(["Oui.", "Majeur : 86 €"]) == "Oui. Majeur : 86 €."


def _numbered(text: str) -> list:
    """The units of one passage holding ``text``."""
    return number_units([Passage("S1", "c#1", "Document", "d.md", "", "", [], text, 0.7, 1.0)])


def test_an_item_of_a_list_brings_what_it_is_a_case_of_but_a_table_row_stands_alone():
    units = _numbered(
        "Un permis de démolir est exigé dans les secteurs suivants :\n- Commune où le conseil l'a instauré\n"
        "- Abords des monuments historiques\nRenseignez-vous en mairie."
    )
    assert [u.text for u in made_whole([2], units)] == [u.text for u in units[:3]]
    assert [u.text for u in made_whole([4], units)] == ["Renseignez-vous en mairie."]
    rows = number_units([PASSPORT])
    assert [u.text for u in made_whole([3], rows)] == [rows[2].text]
    # An item that names what it lists ("Pièce d'identité : …") is still one item of the list, not a table row.
    units = _numbered(
        "L'enfant doit avoir les documents suivants :\n- Formulaire cerfa n°15646 signé par un parent\n"
        "- Pièce d'identité du mineur : carte d'identité ou passeport"
    )
    assert [u.text for u in made_whole([3], units)] == [u.text for u in units]


def test_an_unknown_mode_is_refused_at_start():
    with pytest.raises(ValueError, match="answer mode"):
        AnswerComposer(
            FakeChatModel("{}"),
            Prompt.load(Settings().prompt_file),
            10,
            neutralise=routes_neutraliser(),
            mode="creative",
        )


def test_the_evidence_mode_asks_the_model_nothing():
    model = FakeChatModel("{}")
    composer = AnswerComposer(
        model, Prompt.load(Settings().prompt_file), 10, neutralise=routes_neutraliser(), mode="evidence"
    )
    turn = Turn(question="Prix du passeport ?", passages=[PASSPORT])
    composer.run(turn)
    assert model.calls == [] and turn.draft == "" and composer.version == "evidence"


def test_rows_read_as_sentences_a_receptionist_would_say():
    from bot.answer.extracts import readable

    assert readable(
        [
            "Tableau : Prix des titres d'identité",
            "Titre : Passeport ; Situation : Majeur ; Prix : 86 €",
            "Titre : Passeport ; Situation : Mineur de moins de 15 ans ; Prix : 17 €",
        ]
    ) == ("Passeport, majeur : 86 €. Passeport, mineur de moins de 15 ans : 17 €.")
    assert readable(["Le passeport est valable 10 ans."]) == "Le passeport est valable 10 ans."
