"""AnswerComposer: the model answers from the passages, by choosing their sentences or by writing.

Two modes (``answer.mode`` in ``config/thresholds.yaml``): ``extractive``, where the model is shown the passages
as numbered sentences and answers with the numbers of those that answer (the resident reads the official
sentences, see ``bot.answer.extracts``), and ``generative``, where it writes a short answer and names its passage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bot.answer.extracts import as_answer, made_whole, number_units
from bot.answer.neutraliser import Neutraliser
from bot.answer.outcomes import EndTurn, Outcome
from bot.answer.prompt import Prompt
from bot.answer.streaming import ChosenStream, DraftStream
from bot.answer.turn import Turn
from bot.engines.llm import ChatModel, Completion

NO_SOURCE = "aucune"
MODES = ("extractive", "generative")
MAX_CHOSEN = 4  # sentences or rows the model may choose


# The numbers of the sentences that answer (none: an empty list). Plain integers: an enum of the shown numbers
# with a bound on the count made each generated token ~3x dearer under llama.cpp's grammar (60 → 170 ms here);
# numbers that were not shown are dropped by the code, and only the first MAX_CHOSEN are kept.
EXTRACT_SCHEMA = {
    "type": "object",
    "properties": {"phrases": {"type": "array", "items": {"type": "integer"}}},
    "required": ["phrases"],
}


def answer_schema(labels: list[str]) -> dict[str, Any]:
    """JSON schema the decoder is constrained to: a cited label (or "aucune") and the answer text."""
    return {
        "type": "object",
        "properties": {
            "source": {"type": "string", "enum": [*labels, NO_SOURCE]},
            "reponse": {"type": "string"},
        },
        "required": ["source", "reponse"],
    }


def _unconstrained_reply(text: str) -> str:
    """An unconstrained reply as JSON: a ``{…}`` block, or ``source: S1`` / ``reponse: …`` lines."""
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        return text[start : end + 1]
    source = re.search(r"source\W*\s*(S\d+|aucune)", text, re.I)
    answer = re.search(r"r[ée]ponse\W*\s*(.*)", text, re.I | re.S)
    if not source:
        return text
    return json.dumps({"source": source.group(1), "reponse": answer.group(1).strip() if answer else ""})


def _unparseable(text: str) -> EndTurn:
    """A reply that is not the expected JSON (one cut by max_tokens, say) is no usable answer."""
    return EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, f"unparseable model output: {text[:200]!r}")


class AnswerComposer:
    """Extractive: asks the model for ``{"phrases": [2, 3]}`` over the numbered sentences of the passages.
    Generative: asks for ``{"source": "S1", "reponse": "..."}``."""

    def __init__(
        self,
        model: ChatModel,
        prompt: Prompt,
        max_tokens: int,
        *,
        neutralise: Neutraliser,
        max_tokens_voice: int | None = None,
        constrained: bool = True,
        mode: str = "generative",
        extract_prompt: Prompt | None = None,
    ):
        self.model, self.prompt, self.max_tokens, self.constrained = model, prompt, max_tokens, constrained
        self.max_tokens_voice = max_tokens_voice or max_tokens  # a phone answer must be short and fast
        if mode not in MODES or (mode == "extractive" and extract_prompt is None):
            raise ValueError(f"answer mode {mode!r}: use one of {', '.join(MODES)} (extractive needs its prompt)")
        self.mode, self.extract_prompt = mode, extract_prompt
        self.neutralise = neutralise  # built from the question router's injection patterns: one rule for both

    @property
    def version(self) -> str:
        """The prompt that answers, recorded by evaluations."""
        return (self.extract_prompt or self.prompt).version if self.mode == "extractive" else self.prompt.version

    def run(self, turn: Turn) -> None:
        if self.mode == "extractive":
            self._extract(turn)
        else:
            self._write(turn)

    def _extract(self, turn: Turn) -> None:
        """The model chooses the sentences that answer; the draft is those sentences, verbatim."""
        units = number_units(turn.passages)
        # Passages are data: instruction-like sentences in them are replaced before the model reads them.
        shown = {u.number: self.neutralise(u.text) for u in units}
        passages = [
            {
                "label": p.label,
                "title": p.title,
                "headings": p.headings,
                "units": [(u.number, shown[u.number]) for u in units if u.label == p.label],
            }
            for p in turn.passages
        ]
        messages = (self.extract_prompt or self.prompt).messages(question=turn.question, passages=passages)
        stream = (
            ChosenStream(turn.on_draft, lambda chosen: as_answer([u.text for u in made_whole(chosen, units)]))
            if turn.on_draft
            else None
        )
        completion = self._complete(turn, messages, EXTRACT_SCHEMA, on_text=stream)
        try:
            chosen = [int(n) for n in json.loads(completion.text)["phrases"]][:MAX_CHOSEN]
        except (ValueError, KeyError, TypeError):
            raise _unparseable(completion.text) from None
        # A sentence that read like an order to the AI was hidden from the model: it never reaches a resident either.
        hidden = {u.number for u in units if shown[u.number] != u.text}
        whole = [u for u in made_whole([n for n in chosen if n not in hidden], units) if u.number not in hidden]
        turn.trace["extract"] = {"chosen": chosen, "kept": [u.number for u in whole]}
        if not whole:
            raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, "the model chose no sentence that answers")
        turn.extracted = [(u.label, u.text) for u in whole]
        turn.cited_labels = list(dict.fromkeys(u.label for u in whole))
        turn.draft = as_answer([u.text for u in whole])

    def _complete(
        self,
        turn: Turn,
        messages: list[dict[str, Any]],
        schema: dict[str, Any] | None,
        on_text: Callable[[str], None] | None = None,
    ) -> Completion:
        try:
            budget = self.max_tokens_voice if turn.channel == "voice" else self.max_tokens
            completion = self.model.complete(messages, schema, budget, on_text=on_text)
        except Exception as exc:  # any backend failure ends the turn with a polite message
            raise EndTurn(Outcome.ERROR_LLM, f"{type(exc).__name__}: {exc}") from exc
        turn.trace["llm"] = {
            "seconds": round(completion.seconds, 3),
            "first_token_seconds": round(completion.first_token_seconds or completion.seconds, 3),
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "prompt_version": self.version,
            "messages": messages,  # the prompt actually sent, and what came back: for staff trying a question
            "output": completion.text,
        }
        return completion

    def _write(self, turn: Turn) -> None:
        """The model writes a short answer and names the passage it took it from."""
        labels = [p.label for p in turn.passages]
        # Passages are data: instruction-like sentences in them are replaced before the model reads them.
        shown = [replace(p, text=self.neutralise(p.text)) for p in turn.passages]
        messages = self.prompt.messages(question=turn.question, passages=shown)
        stream = DraftStream(turn.on_draft) if turn.on_draft else None
        schema = answer_schema(labels) if self.constrained else None
        completion = self._complete(turn, messages, schema, on_text=stream)
        try:
            reply = json.loads(completion.text if self.constrained else _unconstrained_reply(completion.text))
            cited, text = str(reply["source"]), str(reply["reponse"]).strip()
        except (ValueError, KeyError, TypeError):
            raise _unparseable(completion.text) from None
        if cited not in labels or not text:
            raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, "the model found no source for this")
        turn.cited_labels, turn.draft = [cited], text
