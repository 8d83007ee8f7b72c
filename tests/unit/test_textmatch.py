from hypothesis import given
from hypothesis import strategies as st

from bot.answer.textmatch import contacts, figures, unsupported_figures
from bot.language.words import content_terms
from bot.text import normalize


def test_figures_normalise_numbers_and_contacts():
    text = "Tarif : 3,69 € ; 1 000 exemplaires ; tél. +33 1 99 00 12 34 ; www.valbourg.fr/horaires."
    assert {"3.69", "1000", "0199001234", "www.valbourg.fr/horaires"} <= figures(text)


def test_an_invented_phone_or_amount_is_unsupported():
    evidence = "Téléphone de l'accueil : 01 99 00 12 34. Passeport majeur : 86 €."
    assert unsupported_figures("Appelez le 01.99.00.12.34, cela coûte 86 €.", evidence) == set()
    assert unsupported_figures("Appelez le 01 23 45 67 89.", evidence) == {"0123456789"}
    assert unsupported_figures("Cela coûte 96 €.", evidence) == {"96"}
    assert unsupported_figures("Écrivez à contact@ailleurs.fr", evidence) == {"contact@ailleurs.fr"}


def test_decimal_comma_and_dot_are_the_same_figure():
    assert unsupported_figures("Le repas coûte 2.40 euros.", "repas 2,40 euros") == set()


def test_content_terms_ignore_question_words():
    assert content_terms("Bonjour, combien coûte un passeport à la mairie ?") == {"passeport"}


def test_normalize_apostrophes_and_spaces():
    assert normalize("L’accueil\u00a0 ouvre") == "l'accueil ouvre"


@given(st.text(max_size=300))
def test_figures_never_crash_and_answer_is_supported_by_itself(text):
    assert unsupported_figures(text, text) == set()
    assert contacts(text) <= figures(text)
