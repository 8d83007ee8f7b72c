"""ValidatedAnswerLookup: a question staff already validated on this corpus is answered from that answer."""

from __future__ import annotations

from bot.answer.outcomes import Outcome
from bot.answer.turn import Turn
from bot.answer.validated_answers import ValidatedAnswers


class ValidatedAnswerLookup:
    """Ends the turn as ``answered`` with the validated answer and its citations, before retrieval.

    Runs after the router (an emergency or an injection is never answered from the cache) and after the
    follow-up rewriter (the standalone question is what was validated).
    """

    def __init__(self, answers: ValidatedAnswers, corpus_hash: str, enabled: bool = True):
        self.answers, self.corpus_hash, self.enabled = answers, corpus_hash, enabled

    def run(self, turn: Turn) -> None:
        if not self.enabled:  # an evaluation tests the pipeline, not the answers staff already approved
            return
        found = self.answers.lookup(turn.question, self.corpus_hash)
        if found is None:
            return
        turn.answer, turn.citations = found
        turn.outcome = Outcome.ANSWERED
        turn.trace["validated_answer"] = True
