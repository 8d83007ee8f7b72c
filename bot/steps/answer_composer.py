"""AnswerComposer: the model writes a short answer and names the passage it took it from."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from bot.llm import ChatModel
from bot.neutraliser import neutralise
from bot.outcomes import EndTurn, Outcome
from bot.prompt import Prompt
from bot.streaming import DraftStream
from bot.turn import Turn

NO_SOURCE = "aucune"


def answer_schema(labels: list[str]) -> dict:
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


class AnswerComposer:
    """Asks the model for ``{"source": "S1", "reponse": "..."}`` over the turn's passages."""

    def __init__(
        self,
        model: ChatModel,
        prompt: Prompt,
        max_tokens: int,
        max_tokens_voice: int | None = None,
        constrained: bool = True,
    ):
        self.model, self.prompt, self.max_tokens, self.constrained = model, prompt, max_tokens, constrained
        self.max_tokens_voice = max_tokens_voice or max_tokens  # a phone answer must be short and fast

    def run(self, turn: Turn) -> None:
        labels = [p.label for p in turn.passages]
        # Passages are data: instruction-like sentences in them are replaced before the model reads them.
        shown = [replace(p, text=neutralise(p.text)) for p in turn.passages]
        messages = self.prompt.messages(question=turn.question, passages=shown)
        try:
            budget = self.max_tokens_voice if turn.channel == "voice" else self.max_tokens
            stream = DraftStream(turn.on_draft) if turn.on_draft else None
            schema = answer_schema(labels) if self.constrained else None
            completion = self.model.complete(messages, schema, budget, on_text=stream)
        except Exception as exc:  # any backend failure ends the turn with a polite message
            raise EndTurn(Outcome.ERROR_LLM, f"{type(exc).__name__}: {exc}") from exc
        turn.metrics["llm"] = {
            "seconds": round(completion.seconds, 3),
            "first_token_seconds": round(completion.first_token_seconds or completion.seconds, 3),
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "prompt_version": self.prompt.version,
        }
        try:
            reply = json.loads(completion.text if self.constrained else _unconstrained_reply(completion.text))
            cited, text = str(reply["source"]), str(reply["reponse"]).strip()
        except (ValueError, KeyError, TypeError):
            # A reply cut by max_tokens is not valid JSON: treat it as no usable answer.
            raise EndTurn(
                Outcome.UNANSWERABLE_NO_SOURCES, f"unparseable model output: {completion.text[:200]!r}"
            ) from None
        if cited not in labels or not text:
            raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, "the model found no source for this")
        turn.cited_labels, turn.draft = [cited], text
