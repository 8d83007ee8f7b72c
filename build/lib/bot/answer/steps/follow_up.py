"""FollowUpRewriter: "et pour un mineur ?" is read in the context of the question before it.

A follow-up is recognised by its form (it opens with "et", "mais", "dans ce cas"…, points back with "ça" or
"le faire", or is too short to name a topic) and rewritten into a standalone question by prefixing the previous
standalone question. No model call: it costs nothing and behaves the same every time.
"""

from __future__ import annotations

import re

from bot.answer.outcomes import Outcome
from bot.answer.turn import Turn
from bot.text import fold

# Only a question that was really about a procedure gives context to the next one.
CONTEXT_OUTCOMES = {Outcome.ANSWERED, Outcome.ANSWERED_FROM_QUOTE, Outcome.UNANSWERABLE_NO_SOURCES}
_OPENS_AS_FOLLOW_UP = re.compile(
    r"^(et|mais|sinon|aussi|alors|pareil|idem|meme chose|dans ce cas|et si|(ok|d'accord|merci)[ ,]+et)\b"
)
_POINTS_BACK = re.compile(
    r"\b(ca|cela|celle-ci|celui-ci|ce document|cette demarche|le faire|la faire|l'obtenir|le renouveler"
    r"|la renouveler|y aller|s'y rendre|en faire|pareil)\b"
)
SHORT_WORDS = 4  # "combien de temps ?", "quels documents ?", "c'est payant ?"
POINTING_WORDS = 8
OPENING_WORDS = 12


def is_follow_up(question: str) -> bool:
    """Whether ``question`` only makes sense after the previous one.

    >>> is_follow_up("Et pour un mineur ?"), is_follow_up("Combien ça coûte ?")
    (True, True)
    >>> is_follow_up("Comment faire une carte d'identité pour mon fils de 12 ans ?")
    False
    """
    text = fold(question)
    words = len(re.findall(r"\w+", text))
    return bool(
        words <= SHORT_WORDS
        or (words <= POINTING_WORDS and _POINTS_BACK.search(text))
        or (words <= OPENING_WORDS and _OPENS_AS_FOLLOW_UP.search(text))
    )


class FollowUpRewriter:
    """Rewrites ``turn.question`` into a standalone question when it follows up on the previous turn.

    ``turn.history`` holds the session's earlier turns, oldest first, as ``{"question", "outcome"}`` with
    the standalone (already rewritten, already masked) question.
    """

    def run(self, turn: Turn) -> None:
        if not turn.history:
            return
        previous = turn.history[-1]
        if previous.get("outcome") not in CONTEXT_OUTCOMES or not is_follow_up(turn.question):
            return
        turn.trace["follow_up_of"] = previous["question"]
        turn.question = f"{previous['question'].rstrip()} {turn.question}"
