"""Text-message spelling written out: "bjr jai perdu ma cni cb ca coute" reads as the documents are written.

Residents type on a phone. Their abbreviations are nowhere in the documents, so neither the lexical search nor
the topic checks can match them ("cni" is "carte nationale d'identité" in every fiche). Only abbreviations that
mean one thing in a message to a town hall are written out; a word that is also French ("sa", "vs", "c") is left
as typed, so is an abbreviation with a full stop ("Pr."), and "cb" stays a bank card after "par", "en", "carte",
"la", "ma" or "une".
"""

from __future__ import annotations

import re

WRITTEN_OUT = {
    "bjr": "bonjour",
    "bsr": "bonsoir",
    "slt": "salut",
    "stp": "s'il te plaît",
    "svp": "s'il vous plaît",
    "mrc": "merci",
    "mci": "merci",
    "dsl": "désolé",
    "cb": "combien",
    "cbn": "combien",
    "cmt": "comment",
    "cmnt": "comment",
    "qd": "quand",
    "kan": "quand",
    "pk": "pourquoi",
    "pq": "pourquoi",
    "pcq": "parce que",
    "pck": "parce que",
    "psk": "parce que",
    "koi": "quoi",
    "ki": "qui",
    "ke": "que",
    "kel": "quel",
    "kels": "quels",
    "kelle": "quelle",
    "kelles": "quelles",
    "eske": "est-ce que",
    "esk": "est-ce que",
    "pr": "pour",
    "ds": "dans",
    "dc": "donc",
    "ac": "avec",
    "avc": "avec",
    "tt": "tout",
    "ts": "tous",
    "bcp": "beaucoup",
    "tjr": "toujours",
    "tjrs": "toujours",
    "tjs": "toujours",
    "svt": "souvent",
    "mtn": "maintenant",
    "mnt": "maintenant",
    "auj": "aujourd'hui",
    "ajd": "aujourd'hui",
    "tps": "temps",
    "jrs": "jours",
    "qqn": "quelqu'un",
    "qqch": "quelque chose",
    "qqc": "quelque chose",
    "ya": "il y a",
    "jai": "j'ai",
    "jsuis": "je suis",
    "chui": "je suis",
    "chuis": "je suis",
    "jpeux": "je peux",
    "jveux": "je veux",
    "jsais": "je sais",
    "rdv": "rendez-vous",
    "cni": "carte nationale d'identité",
    "pb": "problème",
    "pbm": "problème",
    "pblm": "problème",
    "msg": "message",
}
_WORDS = "|".join(sorted(WRITTEN_OUT, key=len, reverse=True))
_ABBREVIATION = re.compile(rf"(?<![\w'’-])({_WORDS})(?![\w'’.-])", re.I)
_CARD = re.compile(r"(?:\bpar|\ben|\bcarte|\bla|\bma|\bune)\s+$", re.I)  # "payer par CB": a bank card


def spelled_out(text: str) -> str:
    """``text`` with its text-message abbreviations written out; anything else as typed.

    >>> spelled_out("bjr jai perdu ma cni cb ca coute pr la refaire")
    "bonjour j'ai perdu ma carte nationale d'identité combien ca coute pour la refaire"
    >>> spelled_out("Peut-on payer par CB à la mairie ?")
    'Peut-on payer par CB à la mairie ?'
    >>> spelled_out("Le Pr. Martin, ki-wi, KI")
    'Le Pr. Martin, ki-wi, qui'
    """

    def written(match: re.Match[str]) -> str:
        word = match.group(1).lower()
        if word == "cb" and _CARD.search(text[: match.start()]):
            return match.group(1)
        return WRITTEN_OUT[word]

    return _ABBREVIATION.sub(written, text)
