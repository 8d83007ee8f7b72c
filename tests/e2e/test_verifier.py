"""The trained verifier, loaded as the service loads it, and the evaluation sets checked for leaks by meaning.
Needs the models ('guichet models fetch') and the tracked verifier (models/verifier); a missing one fails."""

from __future__ import annotations

import pytest

from bot.answer.pipeline import load_verifier, resolve_embedder_path
from bot.engines.embedder import SentenceTransformerEmbedder
from bot.settings import Settings
from eval.leaks import driving_texts, evaluation_questions, find_leaks

pytestmark = pytest.mark.e2e

ADULT = "Carte d'identité et passeport > Tarifs | Tableau : Prix Titre : Passeport ; Situation : Majeur ; Prix : 86 €"
HOURS = "Mairie : horaires et contacts > Horaires | Samedi : de 9 h à 12 h, uniquement pour l'état civil."


@pytest.fixture(scope="module")
def embedder():
    settings = Settings()
    return SentenceTransformerEmbedder(resolve_embedder_path(settings), settings.embedder_dtype)


@pytest.fixture(scope="module")
def verifier(embedder):
    return load_verifier(Settings(), embedder)


def test_the_verifier_tells_the_sentence_that_answers_from_one_on_another_topic(verifier):
    answers, other = verifier.answers("Combien coûte un passeport pour un adulte ?", [ADULT, HOURS])
    threshold = float(Settings().thresholds["evidence"]["min_probability"])
    assert answers >= threshold > other


def test_the_verifier_never_takes_a_wrong_or_unrelated_statement_as_entailed(verifier):
    """What the guard relies on: a statement is kept only when entailed. The head is cautious (docs/verifier.md:
    entailed 0.51 on its valid side), so what is checked is that it does not entail what is wrong."""
    supported, flipped, unrelated = verifier.supports(
        [
            ("Un passeport pour un majeur coûte 86 €.", ADULT),
            ("Un passeport pour un majeur coûte 17 €.", ADULT),
            ("Le passeport coûte 86 €.", HOURS),
        ]
    )
    assert flipped.argmax() != 0 and unrelated.argmax() == 2  # not entailed; not stated
    assert supported[0] > 5 * unrelated[0]  # it reads the row the statement is about


def test_no_evaluation_question_stands_in_other_words_in_what_drives_the_bot(embedder):
    leaks = find_leaks(embedder, evaluation_questions(), driving_texts(Settings()))
    assert [(leak.case_id, leak.kind, leak.text, leak.cosine) for leak in leaks] == []
