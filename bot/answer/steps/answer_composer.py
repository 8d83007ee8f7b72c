"""AnswerComposer: the model writes a short answer from the passages that hold the evidence.

Two modes (``answer.mode`` in ``config/thresholds.yaml``): ``generative``, where the model writes a short answer and
names its passage (the output guard then checks it against the evidence), and ``evidence``, where no model is
called and the resident reads the sentences the verifier found answering (``answered_from_quote``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bot.answer.neutraliser import Neutraliser
from bot.answer.outcomes import EndTurn, Outcome
from bot.answer.prompt import Prompt
from bot.answer.streaming import DraftStream
from bot.answer.turn import Turn
from bot.engines.llm import ChatModel, Completion

NO_SOURCE = "aucune"
MODES = ("generative", "evidence")


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


class AnswerComposer:
    """Generative: asks the model for ``{"source": "S1", "reponse": "..."}``. Evidence: asks nothing."""

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
    ):
        self.model, self.prompt, self.max_tokens, self.constrained = model, prompt, max_tokens, constrained
        self.max_tokens_voice = max_tokens_voice or max_tokens  # a phone answer must be short and fast
        if mode not in MODES:
            raise ValueError(f"answer mode {mode!r}: use one of {', '.join(MODES)}")
        self.mode = mode
        self.neutralise = neutralise  # built from the question router's injection patterns: one rule for both

    @property
    def version(self) -> str:
        """The prompt that answers, recorded by evaluations."""
        return self.prompt.version if self.mode == "generative" else "evidence"

    def run(self, turn: Turn) -> None:
        if self.mode == "generative":
            self._write(turn)

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
            cited, text = NO_SOURCE, ""
            turn.trace["composer"] = f"unparseable model output: {completion.text[:200]!r}"
        if cited not in labels or not text:
            # The verifier found sentences that answer: the small model's "aucune" does not overrule it, and the
            # output guard shows the evidence itself.
            turn.trace.setdefault("composer", "the model found no source; the evidence answers")
            return
        turn.cited_labels, turn.draft = [cited], text
