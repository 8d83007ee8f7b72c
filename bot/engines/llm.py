"""Chat models behind one narrow interface: ``complete(messages, schema, max_tokens, on_text)``.

``LlamaCppModel`` runs a GGUF in process (llama-cpp-python); ``OpenAICompatibleModel`` calls a serving engine
(llama.cpp's server, vLLM, a sovereign endpoint) over the OpenAI chat-completions API; ``FakeChatModel`` replays
scripted replies for unit tests. ``GUICHET_LLM_BACKEND`` chooses between the first two.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from bot.errors import ModelError

if TYPE_CHECKING:
    import httpx

    from bot.settings import Settings

log = logging.getLogger(__name__)


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
Chat = list[dict[str, Any]]  # chat messages: role and content
Schema = dict[str, Any]  # a JSON schema the reply must follow


@dataclass
class _Streamed:
    text: str
    tokens: int
    first_token_seconds: float | None


def _noting(heard: list[str], on_text: OnText | None) -> OnText:
    """``on_text`` that also records that text was passed on."""

    def note(text: str) -> None:
        heard.append(text)
        if on_text:
            on_text(text)

    return note


def _collect(pieces: Iterable[str | None], started: float, on_text: OnText | None) -> _Streamed:
    """Join streamed text pieces (one per generated token), timing the first and reporting the growing text."""
    text, tokens, first_token = "", 0, None
    for piece in pieces:
        if not piece:
            continue
        tokens += 1
        first_token = first_token or time.monotonic() - started
        text += piece
        if on_text:
            on_text(text)
    return _Streamed(text, tokens, first_token)


class ChatModel(Protocol):
    """Anything that turns chat messages into text, optionally constrained by a JSON schema."""

    name: str

    def complete(
        self,
        messages: list[dict[str, Any]],
        schema: dict[str, Any] | None = None,
        max_tokens: int = 160,
        on_text: OnText | None = None,
    ) -> Completion: ...


class FifoLock:
    """A lock granted in arrival order: ``threading.Lock`` makes no such promise, and a resident who asked
    first should be answered first. ``waiting`` is the queue depth."""

    def __init__(self) -> None:
        self._turns = threading.Condition()
        self._issued = self._serving = 0

    @property
    def waiting(self) -> int:
        return max(0, self._issued - self._serving - 1)

    def __enter__(self) -> None:
        with self._turns:
            ticket, self._issued = self._issued, self._issued + 1
            self._turns.wait_for(lambda: self._serving == ticket)

    def __exit__(self, *_: object) -> None:
        with self._turns:
            self._serving += 1
            self._turns.notify_all()


@dataclass(frozen=True)
class Repacking:
    """Whether llama.cpp may move the weights into its repacked (AMX, AVX) buffers, and why."""

    on: bool
    reason: str

    def __str__(self) -> str:
        return f"{'on' if self.on else 'off'} ({self.reason})"


def llama_cpp_features() -> frozenset[str]:
    """The CPU features the installed llama.cpp was built with ("AVX2", "AMX_INT8"…), from its system info."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    fields = (field.partition("=") for field in info.split("|"))
    return frozenset(name.strip() for name, _, value in fields if value.strip() == "1")


def weight_repacking_choice(setting: str, built_with: frozenset[str], amx_fixed: bool = False) -> Repacking:
    """Repacking for ``GUICHET_LLM_WEIGHT_REPACKING`` (``auto``, ``on``, ``off``) and the llama.cpp build's features.

    A llama.cpp built on a CPU with AMX (pip compiles it with ``-march=native``) repacks the weights into an AMX
    buffer, and its AMX kernels as GCC 12 compiles them load a tile configuration whose shapes were never
    written: a segmentation fault at the first answer, measured here. ``auto`` keeps the weights in llama.cpp's
    plain CPU buffers on such a build, unless it was compiled with the fix (``amx_fixed``: the llama-server
    ``build-server`` builds), and lets it repack everywhere else.

    >>> weight_repacking_choice("auto", frozenset({"AVX2", "AMX_INT8"})).on
    False
    >>> weight_repacking_choice("auto", frozenset({"AVX2", "AMX_INT8"}), amx_fixed=True).on
    True
    >>> weight_repacking_choice("auto", frozenset({"AVX2"})).on
    True
    """
    if setting != "auto":
        return Repacking(setting == "on", "set by GUICHET_LLM_WEIGHT_REPACKING")
    if not any(feature.startswith("AMX") for feature in built_with):
        return Repacking(True, "auto: llama.cpp's default")
    if amx_fixed:
        return Repacking(True, "auto: AMX kernels compiled with the tile-configuration fix")
    return Repacking(False, "auto: llama.cpp was built with AMX, whose kernels crash as pip compiles them")


@contextmanager
def weight_layout(setting: str) -> Iterator[Repacking]:
    """Load a model inside this block with the weight repacking chosen for ``setting`` and the installed build."""
    repacking = weight_repacking_choice(setting, llama_cpp_features())
    log.info("llm weight repacking %s", repacking)
    with llama_model_params(use_extra_bufts=repacking.on):
        yield repacking


_PARAMS_LOCK = threading.Lock()


@contextmanager
def llama_model_params(**fields: Any) -> Iterator[None]:
    """Set llama.cpp model parameters that llama-cpp-python's ``Llama()`` takes no argument for.

    ``Llama()`` starts from ``llama_model_default_params()`` and loads the model at once, so the fields are set on
    the defaults it reads while it loads (one load at a time).
    """
    import llama_cpp.llama_cpp as lib

    defaults = lib.llama_model_default_params

    def params() -> Any:
        chosen = defaults()
        for name, value in fields.items():
            setattr(chosen, name, value)
        return chosen

    with _PARAMS_LOCK:
        lib.llama_model_default_params = params
        try:
            yield
        finally:
            lib.llama_model_default_params = defaults


class LlamaCppModel:
    """A GGUF model loaded once, in process. Calls are serialised, first come first served: one llama context is
    not thread-safe.

    The system prompt is identical on every call, so llama.cpp reuses its KV state (the longest common
    token prefix with the previous call) and only the passages and the question are processed per turn.
    """

    def __init__(
        self,
        path: Path,
        context: int,
        threads: int,
        temperature: float,
        repeat_penalty: float,
        weight_repacking: str = "auto",
    ):
        from llama_cpp import Llama

        if not path.exists():
            raise ModelError(f"No model file at {path} — run 'guichet models fetch' or set GUICHET_LLM_PATH.")
        try:
            with weight_layout(weight_repacking):
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
        self._lock = FifoLock()

    def complete(
        self,
        messages: list[dict[str, Any]],
        schema: dict[str, Any] | None = None,
        max_tokens: int = 160,
        on_text: OnText | None = None,
    ) -> Completion:
        response_format = {"type": "json_object", "schema": schema} if schema else None
        with self._lock:
            started = time.monotonic()
            chunks = self.llm.create_chat_completion(
                messages=cast(Any, messages),  # llama-cpp-python's TypedDicts; these are plain role/content dicts
                response_format=cast(Any, response_format),
                max_tokens=max_tokens,
                temperature=self.temperature,
                repeat_penalty=self.repeat_penalty,
                seed=0,
                stream=True,
            )
            # llama-cpp-python streams one chunk per generated token
            stream = cast(Iterator[dict[str, Any]], chunks)  # stream=True: an iterator of chunk dicts
            streamed = _collect((c["choices"][0]["delta"].get("content") for c in stream), started, on_text)
            seconds = time.monotonic() - started
            context_tokens = self.llm.n_tokens  # prompt + generated tokens now in the context
        return Completion(
            text=streamed.text,
            prompt_tokens=context_tokens - streamed.tokens,
            completion_tokens=streamed.tokens,
            seconds=seconds,
            first_token_seconds=streamed.first_token_seconds,
        )


class FakeChatModel:
    """Returns scripted replies in order (or one reply forever) and records the messages it was given."""

    name = "fake-chat-model"

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.calls: list[Chat] = []

    def complete(
        self,
        messages: list[dict[str, Any]],
        schema: dict[str, Any] | None = None,
        max_tokens: int = 160,
        on_text: OnText | None = None,
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


class OpenAICompatibleModel:
    """A model behind ``POST {url}/chat/completions``, streamed; no lock: the server schedules its own batch.

    ``json_format`` is how the server takes a JSON schema: ``json_schema`` (OpenAI, vLLM, llama.cpp's server)
    or ``json_object`` with a ``schema`` field (llama-cpp-python's server).
    """

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str = "",
        json_format: str = "json_schema",
        timeout: float = 120.0,
        temperature: float = 0.0,
        client: httpx.Client | None = None,
        extra: dict[str, Any] | None = None,
    ):
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self.name, self.json_format, self.temperature = model, json_format, temperature
        self.extra = extra or {}  # sampling fields a given engine takes beyond OpenAI's (llama.cpp: repeat_penalty)

    def close(self) -> None:
        """Close the pooled connections to the model server."""
        self.client.close()

    def complete(
        self,
        messages: list[dict[str, Any]],
        schema: dict[str, Any] | None = None,
        max_tokens: int = 160,
        on_text: OnText | None = None,
    ) -> Completion:
        import httpx

        body = {
            "model": self.name,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "seed": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self.extra,
        }
        if schema and self.json_format == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        elif schema:
            body["response_format"] = {"type": "json_object", "schema": schema}
        started, usage = time.monotonic(), cast(dict[str, int], {})

        def pieces(response: httpx.Response) -> Iterator[str | None]:
            for line in response.iter_lines():
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                event = json.loads(line[5:])
                usage.update(event.get("usage") or {})
                yield (event.get("choices") or [{}])[0].get("delta", {}).get("content")

        for attempt in (1, 2):
            heard: list[str] = []  # text already passed on: a request that streamed something is not sent again
            try:
                with self.client.stream("POST", "/chat/completions", json=body) as response:
                    if response.status_code != 200:
                        response.read()
                        raise ModelError(f"model server answered {response.status_code}: {response.text[:200]}")
                    streamed = _collect(pieces(response), started, _noting(heard, on_text))
                break
            except httpx.RemoteProtocolError as exc:
                # The server closed a pooled keep-alive connection as it was reused: send once more on a new one.
                if attempt == 2 or heard:
                    raise ModelError(f"model server unreachable: {type(exc).__name__}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise ModelError(f"model server unreachable: {type(exc).__name__}: {exc}") from exc
        return Completion(
            text=streamed.text,
            prompt_tokens=usage.get("prompt_tokens", 0),  # 0: the server does not report usage when streaming
            completion_tokens=usage.get("completion_tokens", streamed.tokens),
            seconds=time.monotonic() - started,
            first_token_seconds=streamed.first_token_seconds,
        )


def load_chat_model(settings: Settings, llm_path: Path | None) -> ChatModel:
    """The backend named by ``settings.llm_backend``; ``llm_path`` is the verified GGUF for the in-process one."""
    if settings.llm_backend == "openai":
        if not settings.llm_api_url:
            raise ModelError("GUICHET_LLM_BACKEND=openai needs GUICHET_LLM_API_URL (e.g. http://127.0.0.1:8080/v1).")
        return OpenAICompatibleModel(
            settings.llm_api_url,
            settings.llm_api_model,
            settings.llm_api_key.get_secret_value(),
            settings.llm_api_json_format,
            settings.llm_api_timeout,
            settings.llm_temperature,
        )
    if llm_path is None:
        raise ModelError("The in-process model needs a GGUF file: set GUICHET_LLM_PATH or run 'guichet models fetch'.")
    if settings.llm_backend == "llama_server":
        from bot.engines.llama_server import managed_server

        # `guichet serve` starts the server before its workers and hands them its address; elsewhere (chat,
        # evaluation, benchmark) the first model loaded starts one for this process.
        url = settings.llm_api_url or managed_server(settings, llm_path).url
        return OpenAICompatibleModel(
            url,
            llm_path.name,
            timeout=settings.llm_api_timeout,
            temperature=settings.llm_temperature,
            extra={"repeat_penalty": settings.llm_repeat_penalty},
        )
    return LlamaCppModel(
        llm_path,
        settings.llm_context,
        settings.llm_threads,
        settings.llm_temperature,
        settings.llm_repeat_penalty,
        settings.llm_weight_repacking,
    )
