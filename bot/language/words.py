"""Words: the French stop words and stemmer the search and the checks share, the words that ask rather than
name a topic, and those that claim nothing by themselves.

>>> stems("Les cartes d'identité")
['cart', 'identit']
>>> sorted(content_terms("Combien coûte un passeport pour un majeur ?"))
['majeur', 'passeport']
"""

from __future__ import annotations

import logging
import re
from typing import Any

import bm25s
import Stemmer

from bot.text import fold_accents

logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its own logger to DEBUG on import
STEMMER = Stemmer.Stemmer("french")
# bm25s's French stop words, accents folded as the tokens are.
STOPWORDS = sorted({fold_accents(w) for w in bm25s.stopwords.STOPWORDS_FRENCH})
MASKED = re.compile(r"\[[^\]]*\]")  # "[courriel]", "[numéro de téléphone]": see bot.answer.redaction


def tokenize(texts: list[str]) -> Any:
    """French search tokens: accents folded, stop words removed, Snowball-stemmed (bm25s's token ids)."""
    return bm25s.tokenize(
        [fold_accents(t) for t in texts], lower=True, stopwords=STOPWORDS, stemmer=STEMMER, show_progress=False
    )


def stems(text: str) -> list[str]:
    """The search tokens of one text, as strings."""
    tokens: list[str] = bm25s.tokenize(
        [fold_accents(text)], lower=True, stopwords=STOPWORDS, stemmer=STEMMER, return_ids=False, show_progress=False
    )[0]
    return tokens


# Words that appear in almost every resident question and carry no topic.
QUESTION_WORDS = set(
    stems(
        "comment quel quelle quels quelles combien coût coûte prix où quand faire fait faut demande demander "
        "obtenir mairie bonjour merci svp possible puis peux peut dois doit besoin savoir voudrais aimerais "
        "veux est-ce qu'il question renseignement information informations"
    )
)


def content_terms(text: str) -> set[str]:
    """Stemmed topic words of a text: stop words, question words and ``[masked data]`` removed."""
    text = MASKED.sub(" ", text)
    return {s for s in stems(text) if len(s) > 2 and not s.isdigit()} - QUESTION_WORDS


# Words that ask for a fact rather than name a topic ("horaires", "coûte"): no claim by themselves.
FACT_WORDS = content_terms(
    "horaires heure heures ouvert ouverte ouvre ouverture fermé fermée ferme prix tarif tarifs coût coûte combien "
    "coûtent montant payer paye payant payante gratuit gratuite téléphone numéro appeler joindre mail courriel "
    "contacter"
)
# Words that carry no claim of their own in an answer ("Oui, vous pouvez…"): yes/no and modal verbs, and the
# French grammar the stop-word list lets through (prepositions, adverbs, pronouns, auxiliaries).
NO_CLAIM = set(content_terms("oui non pouvez pouvons devez faut falloir possible autorisé autorisée il elle vous"))
NO_CLAIM |= content_terms(
    "pendant durant avant après depuis selon chez vers entre sans sous lors dès jusqu jusque ainsi aussi également "
    "alors donc puis ensuite toujours souvent très plus moins bien encore déjà seulement uniquement notamment "
    "environ presque parfois tout tous toute toutes chaque plusieurs certains certaines autre autres même mêmes "
    "cependant toutefois pourtant néanmoins sinon car comme lorsque lorsqu afin grâce auprès parmi contre hors "
    "outre quelque quelques aucun aucune ici voici voilà celui celle ceux celles cela ceci dont lequel laquelle "
    "lesquels être avoir faire aller allez vont peuvent doivent elle elles cette cet leur leurs"
)
