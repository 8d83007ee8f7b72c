"""The service of one worker process: what it has loaded, its stores, and who it lets in.

The models and index load in the background (``load``) so ``/healthz`` answers at once. Admission refuses at
once what the server cannot take (not ready, too many turns from one client or call, full), as a FastAPI
dependency of the routes that run a turn.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from bot.answer.pipeline import Answerer
from bot.answer.steps.answer_composer import AnswerComposer
from bot.answer.steps.passage_retriever import PassageRetriever
from bot.answer.turn import Turn
from bot.engines.index import Index, live_generation
from bot.engines.recognition import EndOfSpeech, Recognizer, SpeechTiming, WhisperRecognizer, resolve_recognizer_path
from bot.engines.speech import EspeakSynthesizer, PhraseCache, PiperSynthesizer, Synthesizer
from bot.errors import ConfigError, GuichetError, explained
from bot.phone import jambonz
from bot.phone.dialog import VoiceDialog
from bot.phone.listening import ListeningLimits, town_vocabulary
from bot.phone.menu import sections_by_document
from bot.phone.topics import Topics
from bot.settings import Settings
from bot.state.database import state_url
from bot.web.feedback import FeedbackStore
from bot.web.gaps import GapStore
from bot.web.limits import RateLimiter, TurnGate
from bot.web.metrics import Metrics
from bot.web.schemas import VoiceTurnRequest
from bot.web.sessions import RecordedTurn, Session, SessionStore
from bot.web.staff.gap_report import QuestionVectors
from bot.web.workers import WorkerRoll

log = logging.getLogger(__name__)


class Refused(Exception):
    """A quick French refusal; ``retry_after`` tells clients (and the widget) when to try again."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


STARTING = "Le service démarre, merci de réessayer dans quelques secondes."
UNAVAILABLE = "L'assistant est momentanément indisponible. Merci de réessayer plus tard ou de contacter la mairie."
INDEX_CHECK_SECONDS = 2.0  # how often a worker looks for a newer index generation (one small file read)


@dataclass
class Shared:
    """What the communes of one deployment share: the server's capacity (one gate for every turn, one gate for the
    speech streams), the per-client limits, the metrics, and the speech recognizer once loaded."""

    gate: TurnGate
    limiter: RateLimiter
    metrics: Metrics
    listeners: TurnGate
    recognizer: Recognizer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # the recognizer loads once; the count below
    loading: int = 1  # the communes of this worker still loading: it is ready for its peers when none is

    def loaded_one(self) -> bool:
        """One commune has loaded; True when it was the last."""
        with self.lock:
            self.loading -= 1
            return self.loading <= 0

    @classmethod
    def of(cls, settings: Settings) -> Shared:
        return cls(
            TurnGate(settings.max_turns_in_progress),
            RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
            Metrics(),
            TurnGate(settings.stt_max_streams),
        )


class Service:
    """One commune's state in one worker: the answerer once loaded (or why it is not), sessions, feedback; and the
    deployment's gate, limits and metrics (``Shared``), the same objects for every commune it serves."""

    def __init__(
        self,
        load_answerer: Callable[[], Answerer],
        settings: Settings,
        peers: WorkerRoll | None = None,
        shared: Shared | None = None,
        commune: str = "",
    ):
        self.settings, self._load_answerer = settings, load_answerer
        self.shared = shared or Shared.of(settings)
        self.commune = commune  # its identifier when the deployment serves several communes
        self.answerer: Answerer | None = None
        self.dialog: VoiceDialog | None = None
        self.call_opening: list[dict] = []  # the jambonz verbs that open a call (the town's speech vendors)
        self.speech: PhraseCache | None = None  # text-to-speech for the gateway, when GUICHET_SPEECH_API_KEY is set
        self.recognizer: Recognizer | None = None  # speech-to-text for the gateway, same key
        self.recognizer_error = STARTING  # until the model has loaded, then why it did not
        self.vocabulary: list[str] = []  # what recognition is biased toward: the town's names and titles
        self.listeners = self.shared.listeners
        self.listening_limits = ListeningLimits(
            settings.stt_max_utterance_seconds, settings.stt_max_session_seconds, settings.stt_idle_seconds
        )
        self.speech_timing = SpeechTiming(end_silence_ms=settings.stt_end_silence_ms)
        self.error: str | None = None
        self.peers = peers  # the other worker processes of this service, when there are several
        self.sessions = SessionStore(settings.session_ttl_seconds, settings.session_max_turns, settings.max_sessions)
        self.state_url = state_url(settings.database_url, settings.staff_dir)  # its staff, feedback, sets and runs
        self.feedback = FeedbackStore(self.state_url, settings.feedback_retention_days)
        self.gaps = GapStore(settings.feedback_dir, settings.feedback_retention_days)  # same life as the feedback
        self.question_vectors: QuestionVectors | None = None  # the staff's gap report, once asked for
        self.limiter, self.gate, self.metrics = self.shared.limiter, self.shared.gate, self.shared.metrics
        self._index_checked, self._moving = 0.0, threading.Lock()

    def load(self) -> None:
        """Load the models and index; whatever fails is kept as the reason ``/readyz`` gives."""
        try:
            answerer = self._load_answerer()
            voice = answerer.town.get("voice", {})
            self.call_opening = jambonz.opening_verbs(voice.get("speech"))
            self.dialog = VoiceDialog(
                answerer,
                answerer.messages,
                voice,
                max_calls=self.settings.max_sessions,
                on_turn=self.observe,
                ttl_seconds=self.settings.session_ttl_seconds,
                history_turns=self.settings.session_max_turns,
                topics=self._phone_topics(answerer) if self.settings.voice_secrets else None,
                sections=sections_by_document(answerer.step(PassageRetriever).index.chunks),
            )
            if self.settings.speech_keys:
                synthesizer = self._synthesizer()
                self.speech = PhraseCache(synthesizer, self.dialog.fixed_phrases())
                self._load_recognizer(answerer)
            if self.peers and self.shared.loaded_one():  # marked before it serves: /readyz never sees it serving
                self.peers.mark_ready()  # yet counted as loading
            self.answerer = answerer
            lock = getattr(answerer.step(AnswerComposer).model, "_lock", None)  # the in-process model's queue
            self.metrics.model_waiting.set_function(lambda: lock.waiting if lock else 0)
        except Exception as exc:  # noqa: BLE001 - whatever broke, /readyz says so instead of "loading" forever
            self.error = explained(exc)
            where = f" (commune {self.commune})" if self.commune else ""
            log.error("Guichet is not ready%s: %s", where, self.error, exc_info=not isinstance(exc, GuichetError))
            # With several communes, one that cannot load does not hold its worker back (/readyz names it); a single
            # commune's worker stays not ready.
            if self.commune and self.peers and self.shared.loaded_one():
                self.peers.mark_ready()

    def _phone_topics(self, answerer: Answerer) -> Topics:
        """The town's topics a badly heard caller is asked to confirm (``phone`` in ``config/thresholds.yaml``)."""
        retriever, phone = answerer.step(PassageRetriever), self.settings.thresholds.get("phone", {})
        names = Topics.of_town(answerer.town, dict.fromkeys(c.title for c in retriever.index.chunks))
        minimum = float(phone["topic_min_meaning"]), float(phone["topic_min_sound"])
        return Topics(names, retriever.embedder, *minimum, town_name=str(answerer.town.get("town_name", "")))

    def _synthesizer(self) -> Synthesizer:
        """The town's Piper voice if it chose one, else espeak-ng."""
        if self.settings.speech_engine == "piper":
            if self.settings.speech_piper_model is None:
                raise ConfigError("GUICHET_SPEECH_ENGINE=piper needs GUICHET_SPEECH_PIPER_MODEL (the voice's .onnx).")
            return PiperSynthesizer(self.settings.speech_piper_model, self.settings.speech_piper_sha256)
        return EspeakSynthesizer(self.settings.speech_voice, self.settings.speech_words_per_minute)

    def _load_recognizer(self, answerer: Answerer) -> None:
        """Whisper for the gateway's speech-to-text; without its model the rest of the service still runs and each
        recognition session is told why."""
        titles = (chunk.title for chunk in answerer.step(PassageRetriever).index.chunks)
        self.vocabulary = town_vocabulary(answerer.town, titles)
        try:
            with self.shared.lock:  # one Whisper for every commune of the deployment
                if self.shared.recognizer is None:
                    path = resolve_recognizer_path(self.settings)
                    self.shared.recognizer = WhisperRecognizer(
                        path, self.settings.stt_threads, self.settings.stt_beam_size
                    )
            self.recognizer = self.shared.recognizer
        except Exception as exc:  # noqa: BLE001 - a broken speech model must not stop the web and phone answers
            self.recognizer_error = f"La reconnaissance vocale n'est pas disponible : {explained(exc)}"
            log.warning("speech-to-text is off: %s", explained(exc))

    def end_of_speech(self) -> EndOfSpeech:
        return EndOfSpeech(self.speech_timing)

    def client_key(self, request: Request) -> str:
        return client_address(request, self.settings)

    def follow_index(self) -> None:
        """Serve the index's live generation once a re-indexing has switched it (from the staff console, another
        worker or the command line): checked at most every few seconds; the answerer is rebuilt around the new
        generation in the background while the previous one keeps answering."""
        now = time.monotonic()
        if self.answerer is None or now - self._index_checked < INDEX_CHECK_SECONDS:
            return
        self._index_checked = now
        live = live_generation(self.settings.index_dir)
        serving = self.answerer.step(PassageRetriever).index.generation
        if live is None or live.resolve() == serving.resolve() or not self._moving.acquire(blocking=False):
            return
        threading.Thread(target=self._move_to, args=(live,), name="index-switch", daemon=True).start()

    def _move_to(self, generation: Path) -> None:
        try:
            answerer = self.answerer.with_index(Index(generation))
            self.answerer = answerer
            if self.dialog is not None:
                self.dialog.answerer = answerer
            log.info("now serving index generation %s", generation.name)
        except Exception as exc:  # noqa: BLE001 - the previous generation keeps serving; the log says why
            log.error("index generation %s not served: %s", generation.name, explained(exc))
        finally:
            self._moving.release()

    def live_manifest(self) -> dict | None:
        """The served index generation's manifest (None until loaded)."""
        return self.answerer.step(PassageRetriever).index.manifest if self.answerer else None

    def not_serving(self) -> Refused:
        """Why a turn is refused before this commune serves: still starting, or unavailable (it could not load)."""
        return Refused(503, STARTING, 10) if self.error is None else Refused(503, UNAVAILABLE, 60)

    def admit(self, key: str, queue_seconds: float = 0.0) -> Admission:
        """Let one turn in, or raise ``Refused``: not ready (503), too fast (429), full (503). With
        ``queue_seconds``, a turn that finds the service full waits that long for a place before it is refused
        (a caller whose words were heard, while the gateway plays the wait text)."""
        if self.answerer is None:  # still loading, or could not load (its reason is in /readyz for the IT person)
            raise self.not_serving()
        self.follow_index()
        wait = 0.0 if key in self.settings.rate_limit_exempt_addresses else self.limiter.wait_seconds(key)
        if wait:
            self.metrics.rejected.labels("rate_limited").inc()
            message = "Vous posez beaucoup de questions à la suite : merci de patienter un instant."
            raise Refused(429, message, math.ceil(wait))
        deadline = time.monotonic() + queue_seconds
        while not self.gate.try_enter():
            if time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            self.metrics.rejected.labels("over_capacity").inc()
            message = "L'assistant est très sollicité en ce moment. Merci de réessayer dans un instant."
            raise Refused(503, message, self.gate.retry_after())
        self.metrics.in_flight.set(self.gate.in_flight)
        return Admission(self)

    def admit_when_idle(self, stop: threading.Event) -> Admission | None:
        """A staff run's turn: it waits until no resident's turn is in progress, then takes a place in the same gate
        (never rate-limited: it is one agent's queue). None if ``stop`` is set while it waits."""
        while not stop.is_set():
            if self.answerer is not None and self.gate.in_flight == 0 and self.gate.try_enter():
                self.metrics.in_flight.set(self.gate.in_flight)
                return Admission(self)
            stop.wait(0.2)
        return None

    def check_gateway(self, request: Request) -> None:
        """A voice gateway proves itself with ``Authorization: Bearer <GUICHET_VOICE_WEBHOOK_SECRET>``."""
        if not self.settings.voice_secrets:
            raise Refused(503, "Le canal téléphonique est désactivé (GUICHET_VOICE_WEBHOOK_SECRET n'est pas défini).")
        if not bearer_matches(request, self.settings.voice_secrets):
            raise Refused(401, "Authentification de la passerelle téléphonique manquante ou invalide.")

    def check_speech_client(self, request: HTTPConnection) -> None:
        """The gateway using Guichet as its speech vendor sends ``Authorization: Bearer <GUICHET_SPEECH_API_KEY>``."""
        if not self.settings.speech_keys:
            raise Refused(503, "Le service vocal est désactivé (GUICHET_SPEECH_API_KEY n'est pas défini).")
        if not bearer_matches(request, self.settings.speech_keys):
            raise Refused(401, "Clé du service vocal manquante ou invalide.")

    def finished(self, channel: str, turn: Turn, session_id: str, session: Session, turn_id: str) -> dict:
        """Record the turn in the session, the metrics and the questions left unanswered; the public answer
        object with its ids."""
        sources = [c.source for c in turn.citations]
        prompt_version = self.answerer.info["prompt_version"] if self.answerer else ""
        self.sessions.record(session, RecordedTurn(turn_id, turn.question, str(turn.outcome), sources, prompt_version))
        self.observe(turn, channel)
        return {**turn.to_json(), "session_id": session_id, "turn_id": turn_id}

    def observe(self, turn: Turn, channel: str) -> None:
        """Every resident's turn, whatever its channel: the metrics, and its question if no document answered."""
        self.metrics.observe_turn(channel, str(turn.outcome), turn.trace)
        try:
            self.gaps.add(channel, turn)
        except OSError as exc:  # a full disk must not cost the resident the answer
            log.warning("question left unanswered not recorded: %s", exc)


def client_address(request: HTTPConnection, settings: Settings) -> str:
    """The client's address: the proxy's ``X-Forwarded-For`` when the settings trust it, else the connection's."""
    forwarded = request.headers.get("x-forwarded-for") if settings.trust_proxy_headers else None
    return (forwarded or "").split(",")[0].strip() or (request.client.host if request.client else "?")


def bearer_matches(request: HTTPConnection, secrets: list[str]) -> bool:
    """True if the request carries ``Authorization: Bearer <one of secrets>`` (compared in constant time)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and any(
        hmac.compare_digest(token.strip().encode(), secret.encode()) for secret in secrets
    )


@dataclass
class Admission:
    """One admitted turn; released once the model is done with it (``with admission:`` or ``release``; once)."""

    service: Service
    started: float = field(default_factory=time.monotonic)
    _released: bool = False

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self.service.gate.leave(time.monotonic() - self.started)
        self.service.metrics.in_flight.set(self.service.gate.in_flight)


def service_of(request: HTTPConnection, called: str | None = None) -> Service:
    """The service of the commune this request is for: the only one, or the one its host name, its
    ``X-Guichet-Commune`` header or the number a caller dialled (``called``) names (``bot.web.communes``)."""
    communes = getattr(request.app.state, "communes", None)
    return communes.of(request, called) if communes is not None else request.app.state.service


def gateway_service(connection: HTTPConnection) -> Service:
    """The service behind the voice gateway's speech endpoints (one per deployment, the models shared): the first
    commune that loaded, so that one that could not load does not take every commune's speech with it."""
    services = services_of(connection)
    return next((s for s in services if s.answerer is not None), services[0])


def services_of(request: HTTPConnection) -> list[Service]:
    """Every commune's service of this app (one when the deployment serves one): readiness, metrics."""
    communes = getattr(request.app.state, "communes", None)
    return communes.all() if communes is not None else [request.app.state.service]


def admitted(request: Request) -> Admission:
    """Dependency: a resident's turn, admitted under the client's address."""
    service = service_of(request)
    return service.admit(service.client_key(request))


def admitted_call(body: VoiceTurnRequest, request: Request) -> Admission:
    """Dependency: a caller's turn from an authenticated gateway. One gateway carries every call, so each call is
    rate-limited on its own; all share the capacity."""
    service = service_of(request)
    service.check_gateway(request)
    return service.admit("call:" + body.session_id)


Admitted = Depends(admitted)
AdmittedCall = Depends(admitted_call)
