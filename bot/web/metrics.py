"""Prometheus metrics of one worker process (``GET /metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Turns by outcome, latency, turns in progress, tokens, refusals at the door and feedback."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "guichet_turns", "Turns answered, by channel and outcome.", ["channel", "outcome"], registry=self.registry
        )
        self.seconds = Histogram(
            "guichet_turn_seconds",
            "Time to answer a turn.",
            ["channel"],
            buckets=(0.05, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60),
            registry=self.registry,
        )
        self.first_token = Histogram(
            "guichet_first_token_seconds",
            "Model time to first token.",
            buckets=(0.25, 0.5, 1, 2, 3, 5, 8, 13, 20),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "guichet_turns_in_progress", "Turns admitted and not finished (the model queue).", registry=self.registry
        )
        self.model_waiting = Gauge(
            "guichet_model_queue_depth", "Turns waiting for the in-process model.", registry=self.registry
        )
        self.tokens = Counter("guichet_llm_tokens", "Model tokens, by kind.", ["kind"], registry=self.registry)
        self.rejected = Counter(
            "guichet_rejected", "Requests turned away at the door, by reason.", ["reason"], registry=self.registry
        )
        self.feedback = Counter(
            "guichet_feedback", "Residents' votes, by usefulness.", ["useful"], registry=self.registry
        )
        self.listening = Gauge(
            "guichet_speech_sessions", "Callers heard now (speech-to-text sessions open).", registry=self.registry
        )
        self.transcripts = Counter(
            "guichet_speech_transcripts", "Transcripts sent to the gateway, by kind.", ["kind"], registry=self.registry
        )
        self.recognition_seconds = Histogram(
            "guichet_speech_recognition_seconds",
            "Time to transcribe a caller's finished utterance (waiting for the recognizer included).",
            buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20),
            registry=self.registry,
        )
        self.speech_errors = Counter(
            "guichet_speech_errors",
            "Speech-to-text sessions ended by an error, by reason.",
            ["reason"],
            registry=self.registry,
        )

    def observe_turn(self, channel: str, outcome: str, metrics: dict) -> None:
        self.turns.labels(channel, outcome).inc()
        self.seconds.labels(channel).observe(metrics.get("seconds", 0.0))
        llm = metrics.get("llm")
        if llm:
            self.tokens.labels("prompt").inc(llm["prompt_tokens"])
            self.tokens.labels("completion").inc(llm["completion_tokens"])
            self.first_token.observe(llm["first_token_seconds"])

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
