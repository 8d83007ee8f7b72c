"""One typed settings object, read once at the edge (``GUICHET_*`` environment or ``.env``)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_models_dir() -> Path:
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "guichet" / "models"


class Settings(BaseSettings):
    """Everything a town can change without touching code.

    >>> Settings(max_question_chars=300).max_question_chars
    300
    """

    model_config = SettingsConfigDict(env_prefix="GUICHET_", env_file=".env", extra="ignore")

    models_dir: Path = Field(default_factory=_default_models_dir)
    index_dir: Path = REPO_ROOT / "var" / "index" / "demo"
    # The town's sources (guichet sync): the file that declares them, where their last good content is kept.
    sources_file: Path = REPO_ROOT / "config" / "sources.yaml"
    sources_dir: Path = REPO_ROOT / "var" / "sources"
    sync_timeout_seconds: float = Field(default=30.0, gt=0)  # one HTTP request of a sync
    sync_every_hours: float = Field(default=0.0, ge=0)  # guichet serve syncs the sources this often (0: never)
    # Empty means "the catalogue model inside models_dir"; a path points at any other GGUF / ST folder.
    llm_path: Path | None = None
    embedder_path: Path | None = None
    # auto: bfloat16 where the CPU computes it natively, else float32 (see bot.engines.hardware)
    embedder_dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    # The trained verifier (its weights and card; rebuilt by 'make verifier'). It reads the embedder's weights.
    verifier_dir: Path = REPO_ROOT / "models" / "verifier"

    # llama_cpp: the model in process, one turn at a time. llama_server: llama.cpp's server, started and supervised
    # by Guichet on loopback, llm_slots turns decoded together. openai: a serving engine elsewhere (below).
    llm_backend: Literal["llama_cpp", "llama_server", "openai"] = "llama_cpp"
    llm_slots: int = Field(default=4, ge=1, le=64)
    llm_server_path: Path | None = None  # empty: the one 'guichet models build-server' built beside the models
    llm_speculative: str = ""  # llama_server: draftless speculative decoding, e.g. "ngram-simple" (empty: off)
    # llm_backend=openai: a serving engine's OpenAI-compatible API (llama.cpp server, vLLM, a sovereign endpoint).
    llm_api_url: str = ""  # e.g. http://127.0.0.1:8080/v1
    llm_api_model: str = "qwen2.5-1.5b-instruct"
    llm_api_key: SecretStr = SecretStr("")
    llm_api_json_format: Literal["json_schema", "json_object"] = "json_schema"
    llm_api_timeout: float = 120.0
    llm_context: int = 2048
    llm_threads: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1))
    llm_temperature: float = 0.0
    llm_repeat_penalty: float = 1.1
    # auto: llama.cpp repacks the weights for the CPU, except on a build with AMX (see bot.engines.llm)
    llm_weight_repacking: Literal["auto", "on", "off"] = "auto"

    prompt_file: Path = REPO_ROOT / "prompts" / "answer.fr.yaml"
    messages_file: Path = REPO_ROOT / "prompts" / "messages.fr.yaml"
    thresholds_file: Path = REPO_ROOT / "config" / "thresholds.yaml"
    town_file: Path = REPO_ROOT / "config" / "town.yaml"
    routes_file: Path = REPO_ROOT / "config" / "routes.yaml"
    route_examples_file: Path = REPO_ROOT / "config" / "route-examples.fr.yaml"
    cache_dir: Path = REPO_ROOT / "var" / "cache"  # derived data safe to delete (route examples' vectors)

    # Ingestion of untrusted files: a size cap per file, a time cap per PDF (parsed in a child process).
    ingest_max_file_mb: float = Field(default=20.0, gt=0)
    ingest_pdf_seconds: float = Field(default=60.0, gt=0)
    ingest_pdf_max_pages: int = Field(default=1000, gt=0)
    index_keep_generations: int = Field(default=3, ge=1)  # kept on disk for `guichet index rollback`
    # A build beside a serving model: the ingestion's CPU priority (nice, 0-19) and embedder threads (0: one per
    # core). Measured on 2 cores (tools/coexist.py): nice 19 and one thread keep residents' turns as fast as idle;
    # a build with nothing serving beside it is faster with GUICHET_INGEST_THREADS=0 (make shared-index does so).
    ingest_nice: int = Field(default=19, ge=0, le=19)
    ingest_threads: int = Field(default=1, ge=0)
    # Other indexes (comma-separated folders) whose vectors every build copies for the passages they hold, e.g. the
    # syndicate's index of the national fiches: a commune's ingest, sync and console re-indexing embed only the rest.
    reuse_vectors_from: str = ""

    max_question_chars: int = 600
    # Answers staff validated (guichet eval validate), served while the corpus is unchanged.
    validated_answers_file: Path = REPO_ROOT / "var" / "validated-answers.jsonl"
    serve_validated_answers: bool = True  # `guichet eval run` turns this off unless --with-validated

    # HTTP service (guichet serve): limits that protect a small server, sessions, feedback, CORS.
    max_body_bytes: int = 16_384
    rate_limit_per_minute: float = 12.0  # turns per client and minute, after a burst of rate_limit_burst
    rate_limit_burst: int = 6
    max_turns_in_progress: int = 4  # admitted turns (one at the model, the rest waiting); beyond: 503 at once
    # A caller's words that arrive while max_turns_in_progress are in progress wait this long for a place (the
    # gateway plays its wait text) before the caller hears that the service is busy and is asked again.
    voice_queue_seconds: float = Field(default=8.0, ge=0)
    rate_limit_exempt: str = ""  # comma-separated client addresses with no rate limit (e.g. staff's eval host)
    trust_proxy_headers: bool = False  # take the client address from X-Forwarded-For (behind a reverse proxy)
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser, e.g. the town site
    session_ttl_seconds: int = 1800
    session_max_turns: int = 6
    max_sessions: int = 10_000
    feedback_dir: Path = REPO_ROOT / "var" / "feedback"  # the questions no document answered (lacunes-*.jsonl)
    # Staff console (/staff): the cookie-signing key and re-indexing's files; off until `guichet staff add`.
    staff_dir: Path = REPO_ROOT / "var" / "staff"
    # The service's state (staff accounts, sessions, login throttling, the audit log, residents' feedback, question
    # sets and runs): SQLite in staff_dir when empty; postgresql+psycopg://user:password@host/guichet for several
    # machines (bot/state/database.py).
    database_url: str = ""
    # A document dated before this is flagged as possibly stale for staff; an answer from such documents only
    # says their year to the resident.
    stale_after_days: int = Field(default=365, ge=1)
    staff_upload_max_bytes: int = 1_000_000  # a question set sent from the console (residents' bodies stay small)
    gate_file: Path = REPO_ROOT / "eval" / "gate.yaml"  # the release thresholds a console run is judged by
    feedback_retention_days: int = 365
    metrics_enabled: bool = True
    # Shared secret(s) of the jambonz webhooks, comma-separated; empty disables the phone channel.
    voice_webhook_secret: str = ""

    # Guichet as the gateway's speech vendor (text-to-speech on this server): its API key(s), comma-separated,
    # as entered for the custom vendor in the jambonz portal; empty turns it off.
    speech_api_key: str = ""
    speech_voice: str = "fr-fr"  # espeak-ng voice when the gateway names none
    # The synthesizer: espeak-ng (always there), or a Piper voice file the town provides (.onnx, .onnx.json beside).
    speech_engine: Literal["espeak", "piper"] = "espeak"
    speech_piper_model: Path | None = None
    speech_piper_sha256: str = ""  # pins the voice file: a different file stops start-up
    speech_words_per_minute: int = Field(default=160, ge=80, le=400)
    # Speech-to-text on this server (WebSocket /speech/stt, jambonz custom STT), same API key(s) as above.
    # Empty path means the catalogue's Whisper inside models_dir ('guichet models fetch --speech').
    stt_model_path: Path | None = None
    stt_threads: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1))
    stt_beam_size: int = Field(default=5, ge=1, le=10)
    stt_max_streams: int = Field(default=20, ge=1)  # callers heard at once; one more gets an error message
    stt_end_silence_ms: int = Field(default=800, ge=200, le=5000)  # quiet that ends what a caller says
    stt_max_utterance_seconds: float = Field(default=30.0, gt=0)  # a caller who never stops gets a transcript here
    stt_max_session_seconds: float = Field(default=600.0, gt=0)  # audio in one recognition session
    stt_idle_seconds: float = Field(default=10.0, gt=0)  # no frame for this long closes the session

    @property
    def last_sync_file(self) -> Path:
        """What the last ``guichet sync`` did, per source (written by the command, shown by the staff console)."""
        return self.sources_dir / "last-sync.json"

    @property
    def reuse_vectors_dirs(self) -> list[Path]:
        return [Path(folder) for folder in comma_list(self.reuse_vectors_from)]

    @property
    def voice_secrets(self) -> list[str]:
        return comma_list(self.voice_webhook_secret)

    @property
    def speech_keys(self) -> list[str]:
        return comma_list(self.speech_api_key)

    @property
    def allowed_origins(self) -> list[str]:
        return [origin.rstrip("/") for origin in comma_list(self.cors_origins)]

    @property
    def rate_limit_exempt_addresses(self) -> set[str]:
        return set(comma_list(self.rate_limit_exempt))

    @cached_property
    def thresholds(self) -> dict[str, Any]:
        """The versioned retrieval and guard thresholds (YAML)."""
        return load_yaml(self.thresholds_file)


def comma_list(value: str) -> list[str]:
    """The non-empty, stripped items of a comma-separated setting.

    >>> comma_list(" a, ,b ")
    ['a', 'b']
    """
    return [item.strip() for item in value.split(",") if item.strip()]


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with an error that names the file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Configuration file {path} not found.") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Configuration file {path} is not valid UTF-8 YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Configuration file {path} must hold a mapping at top level.")
    return data


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, turning validation errors into one readable ConfigError."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = "GUICHET_" + str(first["loc"][0]).upper()
        raise ConfigError(f"Config '{key}' has value {first.get('input')!r}. {first['msg']}.") from None
