"""Whether a resident's question is another wording of a question staff validated, so its answer can be reused.

Meaning alone is not enough: "un passeport pour un adulte" and "pour un mineur" are close in any embedding, yet
their answers differ. Two wordings count as the same question only if, besides being close in meaning (checked by
the caller), they ask for the same kind of fact (a price, a time, a delay, a place, documents, a procedure, a
yes/no) and nothing that tells situations apart differs between them:

- the same numbers ("30 ans" is not "15 ans");
- the same negation;
- the same topic words, once the words that only say what kind of fact is asked ("prix", "horaires", "pièces")
  are set aside (they are compared as kinds) and a noun and its verb ("inscription", "inscrire") count as one
  word. A topic word in one wording only may name another situation ("mineur", "perte", "hiver", "tranche 2"),
  another thing ("peinture" for "canapé"), or one the documents do not cover at all ("marché de Noël"), and a
  word left out may leave the situation open ("un passeport" for "un passeport pour un adulte").

This errs on the side of a fresh answer: a paraphrase that drops or swaps a word the documents use is answered
by the pipeline, which costs seconds, never a wrong answer.
"""

from __future__ import annotations

import re

from bot.language.numerals import quantities
from bot.language.words import content_terms, stems
from bot.text import fold_accents

# What a question asks for, from its frame words (accent-folded). "combien" alone asks for a price; "combien de
# temps" for a delay. A day or a time of day is one kind: "quand ouvre" and "à quelle heure ouvre" ask the same.
_DELAY = r"combien de (temps|jours|semaines|mois)|\bdelais?\b|en combien de temps|\bduree\b"
_COUNT = r"combien de (personnes|places|metres|m2|m²|fois)"
ASKED: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("delay", re.compile(_DELAY)),
    ("count", re.compile(_COUNT)),
    (
        "price",
        re.compile(rf"(?!.*({_DELAY}|{_COUNT}))(?=.*(\bcombien\b|\bprix\b|\btarifs?\b|\bcout|\bpayer\b|\bmontant\b))"),
    ),
    ("time", re.compile(r"\bheures?\b|\bhoraires?\b|quel jour|quelle date")),
    ("place", re.compile(r"\bou\b|\badresse\b|\blieu\b|se trouve")),
    ("documents", re.compile(r"\bdocuments?\b|\bpapiers\b|\bpieces\b|justificatifs?|\bfournir\b|\bapporter\b")),
    ("procedure", re.compile(r"\bcomment\b|\bdemarches?\b|que faire|quoi faire")),
    ("who", re.compile(r"\bqui\b")),
)
# Asks for a yes or a no, when it asks for nothing else ("combien faut-il payer" asks for a price).
YES_NO = re.compile(r"^(est-ce|peut-on|puis-je|faut-il|dois-je|ai-je|suis-je)\b|-(il|elle|on|je)\b")
NEGATION = re.compile(r"\b(ne|n'|pas|plus|jamais|aucun|aucune|sans|non)\b")
# Words residents and documents use for the same thing (accent-folded stems are compared after this).
SAME_WORDS = {
    "adulte": "majeur",
    "adultes": "majeur",
    "cni": "carte identite",
    "perdu": "perte",
    "perdue": "perte",
    "perdus": "perte",
    "volee": "vol",
    "vole": "vol",
    "fils": "enfant",
    "fille": "enfant",
    # a noun and its verb, or a participle and its verb, name the same thing
    "ouverture": "ouvre",
    "ouvert": "ouvre",
    "ouverte": "ouvre",
    "fermeture": "ferme",
    "fermee": "ferme",
    "inscription": "inscrire",
    "location": "louer",
    "declaration": "declarer",
    "renouvellement": "renouveler",
    "reservation": "reserver",
    "paiement": "payer",
}
# The frame of a question: compared through ``asked_kinds``, never as a topic word.
FRAME_WORDS = set(
    stems(
        "combien prix tarif tarifs cout coute couts payer montant heure heures horaire horaires quand delai delais "
        "duree temps adresse lieu documents document papiers pieces justificatif justificatifs fournir apporter "
        "comment demarche demarches faire qui"
    )
)


def asked_kinds(question: str) -> frozenset[str]:
    """The kinds of fact a question asks for.

    >>> sorted(asked_kinds("Combien coûte un passeport ?")), sorted(asked_kinds("Quel délai pour un passeport ?"))
    (['price'], ['delay'])
    >>> sorted(asked_kinds("À quelle heure ouvre la mairie le samedi ?")), sorted(asked_kinds("Elle ouvre quand ?"))
    (['time'], ['time'])
    >>> sorted(asked_kinds("Combien payer pour un passeport quand on est adulte ?"))
    ['price']
    """
    text = _words(question)
    kinds = frozenset(kind for kind, pattern in ASKED if pattern.search(text))
    # "quand" asks for a time only when nothing else is asked ("combien payer quand on est adulte" is a price)
    if not kinds and re.search(r"\bquand\b", text):
        kinds = frozenset({"time"})
    return kinds or frozenset({"yes/no"} if YES_NO.search(text) else ())


def situation_difference(asked: str, validated: str) -> str:
    """Why ``asked`` may not reuse the answer validated for ``validated`` ("" when nothing tells them apart).

    >>> validated = "Combien coûte un passeport pour un majeur ?"
    >>> situation_difference("Quel est le prix d'un passeport pour un adulte ?", validated)
    ''
    >>> situation_difference("Combien coûte un passeport pour un mineur ?", validated)
    'mineur / majeur'
    """
    if asked_kinds(asked) != asked_kinds(validated):
        return "asks for another kind of fact"
    if quantities(fold_accents(asked)) != quantities(fold_accents(validated)):
        return "other numbers"
    if bool(NEGATION.search(_words(asked))) != bool(NEGATION.search(_words(validated))):
        return "a negation in one wording only"
    mine, theirs = _terms(asked), _terms(validated)
    differing = sorted(mine ^ theirs)
    if differing:
        return " / ".join([*(t for t in differing if t in mine), *(t for t in differing if t in theirs)])
    return ""


def _words(text: str) -> str:
    text = fold_accents(text).replace("'", "' ")
    return " ".join(SAME_WORDS.get(word, word) for word in re.findall(r"[\w'-]+", text))


def _terms(question: str) -> set[str]:
    return content_terms(_words(question)) - FRAME_WORDS
