"""How an answer is made: the steps below, in order, over one ``Turn``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from bot.answer.neutraliser import Neutraliser
from bot.answer.outcomes import ANSWERS, EndTurn, Messages, Outcome
from bot.answer.prompt import Prompt
from bot.answer.route_classifier import RouteClassifier
from bot.answer.services import Services
from bot.answer.steps.answer_composer import AnswerComposer
from bot.answer.steps.evidence_finder import EvidenceFinder
from bot.answer.steps.follow_up import FollowUpRewriter
from bot.answer.steps.input_guard import InputGuard
from bot.answer.steps.output_guard import DEFAULT_CHECKS, OutputGuard
from bot.answer.steps.passage_retriever import PassageRetriever
from bot.answer.steps.question_router import QuestionRouter, load_patterns
from bot.answer.steps.validated_answer import ByMeaning, ValidatedAnswerLookup
from bot.answer.turn import Citation, Turn
from bot.answer.validated_answers import ValidatedAnswers
from bot.engines.embedder import Embedder, SentenceTransformerEmbedder
from bot.engines.index import Index
from bot.engines.llm import ChatModel, load_chat_model
from bot.engines.model_store import CATALOGUE, EMBEDDING_GEMMA, QWEN, verify_llm_file
from bot.engines.verifier import CrossEncoderVerifier, EmbedderVerifier, Verifier
from bot.language.years import asked_year
from bot.settings import Settings, load_yaml
from bot.timestamps import age_in_days

log = logging.getLogger(__name__)
S = TypeVar("S")

ANSWER_STEPS = (
    InputGuard,
    QuestionRouter,
    FollowUpRewriter,
    ValidatedAnswerLookup,
    PassageRetriever,
    EvidenceFinder,
    AnswerComposer,
    OutputGuard,
)


@dataclass
class Answerer:
    """Runs the answer steps over a turn; a step ends the turn early by raising ``EndTurn`` (with that outcome's
    message) or by setting ``turn.outcome`` itself (a validated answer).

    >>> answerer = Answerer.from_settings(load_settings())  # doctest: +SKIP
    >>> answerer.answer("Quels sont les horaires de la mairie ?").to_json()  # doctest: +SKIP
    """

    steps: tuple[Any, ...]
    messages: Messages
    info: dict[str, Any]  # prompt version, models, thresholds version, index manifest: recorded by evaluations
    town: dict[str, Any] = field(default_factory=dict)  # config/town.yaml: contacts, directory, phone channel
    services: Services | None = None  # where a reply that cannot answer sends the resident
    stale_after_days: int | None = None  # sources all older than this: the answer says their year
    today: Callable[[], date] = date.today  # what "older" is measured from (a fixed day in tests)

    def answer(
        self,
        question: str,
        history: list[dict[str, Any]] | None = None,
        channel: str = "web",
        on_draft: Callable[[str], None] | None = None,
    ) -> Turn:
        """Answer one question; ``history`` holds the session's earlier turns (see ``FollowUpRewriter``)."""
        turn = Turn(question=question, history=list(history or []), channel=channel, on_draft=on_draft)
        started = time.monotonic()
        try:
            for step in self.steps:
                step.run(turn)
                if turn.outcome is not None:
                    break
        except EndTurn as end:
            turn.outcome = end.outcome
            service = self.services.for_question(turn.question, turn.query_vector) if self.services else None
            turn.answer = self.messages.for_outcome(end.outcome, service.contact if service else None)
            turn.citations = []
            turn.trace["end_reason"] = end.detail
            if service:
                turn.trace["service"] = service.key
        if turn.outcome is Outcome.ANSWERED_FROM_QUOTE:
            turn.answer = f"{self.messages.for_outcome(turn.outcome)} « {turn.answer} »"
        if turn.outcome in ANSWERS:
            today = self.today()
            year = old_sources_year(turn.citations, self.stale_after_days, today, asked_year(turn.question, today))
            if year:
                turn.dated = self.messages.text("notice_old_sources", year=str(year))
                if not turn.answer.endswith(turn.dated):  # a validated answer was approved with it
                    turn.answer = f"{turn.answer} {turn.dated}"
        if turn.redacted:
            notice = self.messages.text("notice_redacted", kinds=", ".join(turn.redacted))
            turn.answer = f"{notice} {turn.answer}"
        turn.seconds = turn.trace["seconds"] = round(time.monotonic() - started, 3)
        log.info("turn outcome=%s seconds=%s", turn.outcome, turn.seconds)
        return turn

    def without_validated_answers(self) -> Answerer:
        """The same answerer with the validated answers not served: what a question set run tests is the pipeline."""
        off = ValidatedAnswerLookup
        steps = tuple(
            off(s.answers, s.corpus_hash, False, s.by_meaning) if isinstance(s, off) else s for s in self.steps
        )
        return replace(self, steps=steps)

    def with_index(self, index: Index) -> Answerer:
        """The same answerer over another index generation (after a re-indexing): same models, same rules."""
        retriever = self.step(PassageRetriever)
        index.check_embedder(retriever.embedder.name, retriever.embedder.dimension)
        corpus_hash = index.manifest["corpus_hash"]

        def moved(step: Any) -> Any:
            if isinstance(step, PassageRetriever):
                return PassageRetriever(step.embedder, index, step.thresholds)  # the same thresholds, new passages
            if isinstance(step, ValidatedAnswerLookup):
                meaning = step.by_meaning and ByMeaning(retriever.embedder, index, step.by_meaning.min_similarity)
                return ValidatedAnswerLookup(step.answers, corpus_hash, step.enabled, meaning)
            return step

        return replace(self, steps=tuple(map(moved, self.steps)), info=self.info | {"index": index.manifest})

    def step(self, kind: type[S]) -> S:
        """The step of this type (to reach its collaborators, e.g. ``step(AnswerComposer).model``)."""
        return next(s for s in self.steps if isinstance(s, kind))

    @classmethod
    def build(
        cls,
        settings: Settings,
        embedder: Embedder,
        model: ChatModel,
        index: Index,
        classifier: RouteClassifier | None = None,
        verifier: Verifier | None = None,
    ) -> Answerer:
        """Wire the steps from settings and already-loaded collaborators (fakes in unit tests); without a
        ``verifier``, the trained one is loaded."""
        index.check_embedder(embedder.name, embedder.dimension)
        thresholds = settings.thresholds
        town = load_yaml(settings.town_file)
        patterns, routes_version = load_patterns(settings.routes_file)
        classifier = classifier or RouteClassifier.load(settings.route_examples_file, embedder, settings.cache_dir)
        routing = thresholds.get("routing", {})
        router = QuestionRouter(patterns, classifier, float(routing.get("min_probability", 0.5)), routes_version)
        neutralise = Neutraliser.from_routes(patterns)
        composer = answer_composer(settings, model, neutralise)
        verifier = verifier or load_verifier(settings, embedder)
        evidence = thresholds["evidence"]
        steps = (
            InputGuard(settings.max_question_chars),
            router,
            FollowUpRewriter(),
            ValidatedAnswerLookup(
                ValidatedAnswers(settings.validated_answers_file),
                index.manifest["corpus_hash"],
                settings.serve_validated_answers,
                by_meaning(embedder, index, thresholds),
            ),
            PassageRetriever(embedder, index, thresholds["retrieval"]),
            EvidenceFinder(
                verifier,
                float(evidence["min_probability"]),
                shown=int(evidence.get("passages_shown", 2)),
                max_candidates=int(evidence.get("max_candidates", 40)),
                neutralise=neutralise,
            ),
            composer,
            output_guard(town, thresholds, verifier),
        )
        assert tuple(type(s) for s in steps) == ANSWER_STEPS
        info = {
            "routes_version": router.version,
            "route_examples_version": classifier.version,
            "prompt_version": composer.version,
            "thresholds_version": str(thresholds.get("version")),
            "llm": model.name,
            "embedder": embedder.name,
            "verifier": verifier.name,
            "index": index.manifest,
        }
        services = Services.from_town(town, embedder, float(thresholds.get("services", {}).get("min_similarity", 0.3)))
        messages = Messages.load(settings.messages_file, town)
        return cls(
            steps=steps,
            messages=messages,
            info=info,
            town=town,
            services=services,
            stale_after_days=settings.stale_after_days,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Answerer:
        """Load the real models and the index named by the settings (several seconds)."""
        return SharedModels(settings).answerer(settings)


class SharedModels:
    """The models a deployment loads once, whatever the number of communes it serves: the embedder, the chat model
    (or the serving engine's client), the route classifier and the verifier. ``answerer(settings)`` wires one
    commune's answer path over them, with its own index, town file and validated answers."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()  # communes load at once, in threads: the models load once
        self._models: tuple[Embedder, ChatModel, RouteClassifier, Verifier] | None = None
        self._info: dict[str, str] = {}

    def _load(self) -> tuple[Embedder, ChatModel, RouteClassifier, Verifier]:
        with self._lock:
            if self._models is None:
                settings = self.settings
                embedder_path = resolve_embedder_path(settings)
                embedder = SentenceTransformerEmbedder(embedder_path, settings.embedder_dtype)
                llm_path = resolve_llm_path(settings) if settings.llm_backend != "openai" else None
                sha = verify_llm_file(llm_path) if llm_path else f"served at {settings.llm_api_url}"
                model = load_chat_model(settings, llm_path)
                classifier = RouteClassifier.load(settings.route_examples_file, embedder, settings.cache_dir)
                self._models = (embedder, model, classifier, load_verifier(settings, embedder))
                self._info = {
                    "llm_sha256": sha,
                    "embedder_sha256": next(
                        (m.inner_check[1] for m in CATALOGUE if m.inner_check and m.file == embedder_path.name),
                        "not a catalogue model",
                    ),
                }
            return self._models

    def answerer(self, settings: Settings) -> Answerer:
        """The answer path of the commune ``settings`` describe (its index is opened first: a missing index is
        said before the models take seconds to load)."""
        index = Index.open(settings.index_dir)
        embedder, model, classifier, verifier = self._load()
        answerer = Answerer.build(settings, embedder, model, index, classifier, verifier)
        answerer.info.update(self._info)
        return answerer


def old_sources_year(
    citations: list[Citation], stale_after_days: int | None, today: date, asked: int | None = None
) -> int | None:
    """The year of the newest source when every cited document is dated and either older than
    ``stale_after_days`` (a 2014 tariff, a fiche last changed years ago) or from a year before the one the question
    asks about (``asked``: "cette année", "en 2027"); None when one is recent or undated (nothing to say).

    >>> old = Citation("Tarifs", "tarifs-2014.pdf", "", "2014-01-01", "…")
    >>> old_sources_year([old], 365, date(2026, 12, 7)), old_sources_year([old], None, date(2026, 12, 7))
    (2014, None)
    >>> last_year, today = Citation("Cantine", "cantine.md", "", "2025-09-01", "…"), date(2026, 12, 7)
    >>> old_sources_year([last_year], 730, today), old_sources_year([last_year], 730, today, asked=2026)
    (None, 2025)
    """
    ages = [age for c in citations if (age := age_in_days(c.date, today)) is not None]
    if not citations or len(ages) < len(citations):
        return None
    newest = max(int(c.date[:4]) for c in citations)
    stale = bool(stale_after_days and min(ages) > stale_after_days)
    return newest if stale or (asked is not None and newest < asked) else None


def answer_composer(settings: Settings, model: ChatModel, neutralise: Neutraliser) -> AnswerComposer:
    """The composer that asks ``model``, as ``config/thresholds.yaml`` (``answer``) and the prompt files set it."""
    answer = settings.thresholds["answer"]
    mode = str(answer.get("mode", "generative"))
    return AnswerComposer(
        model,
        Prompt.load(settings.prompt_file),
        int(answer["max_tokens"]),
        max_tokens_voice=int(answer.get("max_tokens_voice", answer["max_tokens"])),
        constrained=bool(answer.get("constrained", True)),
        mode=mode,
        neutralise=neutralise,
    )


def output_guard(town: dict[str, Any], thresholds: dict[str, Any], verifier: Verifier | None) -> OutputGuard:
    """The output guard as ``config/thresholds.yaml`` (``guard``) sets it, with the town's directory."""
    guard = thresholds.get("guard", {})
    return OutputGuard(
        town.get("directory", []),
        verifier=verifier,
        checks=guard.get("checks", DEFAULT_CHECKS),
        min_entailed=float(guard.get("min_entailed", 0.5)),
        max_contradicted=float(guard.get("max_contradicted", 0.5)),
    )


def load_verifier(settings: Settings, embedder: Embedder) -> Verifier:
    """The verifier (``models/verifier``, or ``GUICHET_VERIFIER_DIR``): the trained cross-encoder over the
    embedder's weights, and for *answers* the embedder itself with the card's calibration when the card says so."""
    cross_encoder = load_cross_encoder(settings)
    if cross_encoder.card.answers_by() != "embedder":
        return cross_encoder
    a, b = cross_encoder.card.extra["answers_calibration"]
    return EmbedderVerifier(embedder, (float(a), float(b)), cross_encoder)


def load_cross_encoder(settings: Settings) -> CrossEncoderVerifier:
    """The trained cross-encoder alone (what the output guard's *supports* check reads)."""
    return CrossEncoderVerifier(resolve_embedder_path(settings), settings.verifier_dir, settings.embedder_dtype)


def by_meaning(embedder: Embedder, index: Index, thresholds: dict[str, Any]) -> ByMeaning | None:
    """Validated answers found by meaning too, when ``validated_answers.min_similarity`` is set."""
    minimum = thresholds.get("validated_answers", {}).get("min_similarity")
    return ByMeaning(embedder, index, float(minimum)) if minimum is not None else None


def resolve_llm_path(settings: Settings) -> Path:
    """The GGUF that will run: the configured file, else the catalogue model in the models folder."""
    return settings.llm_path or settings.models_dir / QWEN.file


def resolve_embedder_path(settings: Settings) -> Path:
    """The sentence-transformers folder that will run: the configured one, else the catalogue model."""
    return settings.embedder_path or settings.models_dir / EMBEDDING_GEMMA.file
