"""Chat models behind one narrow interface: ``complete(messages, schema, max_tokens)``.

``LlamaCppModel`` runs a GGUF in process (llama-cpp-python); ``FakeChatModel`` replays scripted replies for
unit tests. Backends are chosen by name from settings through ``BACKENDS``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.errors import ModelError


@dataclass
class Completion:
    """A model reply with the token counts and time it cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    first_token_seconds: float | None = None  # time to first token, where the backend streams


# Called with the whole text generated so far, each time it grows (for streaming to the resident).
OnText = Callable[[str], None]


class ChatModel(Protocol):
    """Anything that turns chat messages into text, optionally constrained by a JSON schema."""

    name: str

    def complete(
        self, messages: list[dict], schema: dict | None = None, max_tokens: int = 160, on_text: OnText | None = None
    ) -> Completion: ...


class LlamaCppModel:
    """A GGUF model loaded once, in process. Calls are serialised: one llama context is not thread-safe.

    The system prompt is identical on every call, so llama.cpp reuses its KV state (the longest common
    token prefix with the previous call) and only the passages and the question are processed per turn.
    """

    def __init__(self, path: Path, context: int, threads: int, temperature: float, repeat_penalty: float):
        from llama_cpp import Llama

        if not path.exists():
            raise ModelError(f"No model file at {path} — run 'guichet models fetch' or set GUICHET_LLM_PATH.")
        try:
            self.llm = Llama(
                model_path=str(path),
                n_ctx=context,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=512,
                verbose=False,
            )
        except ValueError as exc:
            raise ModelError(f"Could not load {path}: {exc}. Is it a GGUF file?") from None
        self.name = path.name
        self.temperature, self.repeat_penalty = temperature, repeat_penalty
        self._lock = threading.Lock()

    def complete(
        self, messages: list[dict], schema: dict | None = None, max_tokens: int = 160, on_text: OnText | None = None
    ) -> Completion:
        response_format = {"type": "json_object", "schema": schema} if schema else None
        with self._lock:
            started = time.monotonic()
            chunks = self.llm.create_chat_completion(
                messages=messages,
                response_format=response_format,
                max_tokens=max_tokens,
                temperature=self.temperature,
                repeat_penalty=self.repeat_penalty,
                seed=0,
                stream=True,
            )
            text, tokens, first_token = "", 0, None
            for chunk in chunks:
                piece = chunk["choices"][0]["delta"].get("content")
                if not piece:
                    continue
                tokens += 1  # llama-cpp-python streams one chunk per generated token
                first_token = first_token or time.monotonic() - started
                text += piece
                if on_text:
                    on_text(text)
            seconds = time.monotonic() - started
            context_tokens = self.llm.n_tokens  # prompt + generated tokens now in the context
        return Completion(
            text=text,
            prompt_tokens=context_tokens - tokens,
            completion_tokens=tokens,
            seconds=seconds,
            first_token_seconds=first_token,
        )


class FakeChatModel:
    """Returns scripted replies in order (or one reply forever) and records the messages it was given."""

    name = "fake-chat-model"

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.calls: list[list[dict]] = []

    def complete(
        self, messages: list[dict], schema: dict | None = None, max_tokens: int = 160, on_text: OnText | None = None
    ) -> Completion:
        self.calls.append(messages)
        text = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if on_text:
            for end in range(8, len(text) + 8, 8):  # a few characters at a time, as a real model streams
                on_text(text[:end])
        return Completion(
            text=text,
            prompt_tokens=sum(len(m["content"]) // 4 for m in messages),
            completion_tokens=len(text) // 4,
            seconds=0.0,
        )


BACKENDS = {"llama_cpp": LlamaCppModel}
