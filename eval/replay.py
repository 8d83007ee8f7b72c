"""Replay a finished run's model replies through today's answer checks, without loading a model.

A run keeps, per case, the passages shown to the model, the sentences the verifier said answer (``evidence``) and
what the model wrote (``model_output``). Changes to
what follows the model (parsing its reply, the output guard, the messages) can then be measured in seconds on
the same replies: each such case goes again through the input guard, the composer (fed the stored reply) and
the output guard, and is scored again. Cases the model never saw (routed away, no source, validated answers)
keep their stored result: a change to routing or retrieval needs a real run. So do the follow-ups of a
conversation: the earlier turns decide the question the steps saw ("et pour un mineur ?" read after the previous
question), and they are not replayed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bot.answer.neutraliser import Neutraliser
from bot.answer.outcomes import EndTurn, Messages, Outcome
from bot.answer.pipeline import Answerer, answer_composer, load_cross_encoder, output_guard
from bot.answer.services import Services
from bot.answer.steps.input_guard import InputGuard
from bot.answer.steps.output_guard import DEFAULT_CHECKS
from bot.answer.steps.question_router import load_patterns
from bot.answer.turn import Evidence, Passage, Turn
from bot.engines.embedder import Embedder
from bot.engines.index import Index
from bot.engines.llm import FakeChatModel
from bot.settings import Settings, load_yaml
from eval.dataset import Case
from eval.facts import stored_document
from eval.runner import load_results
from eval.scoring import score_case, summarise


class StoredPassages:
    """Stands for retrieval and the verifier: the passages the model was shown in the stored run, and the sentences
    the verifier said answer."""

    def __init__(self, passages: list[dict[str, Any]], evidence: list[dict[str, Any]], threshold: float = 0.0):
        # A run made with a lower threshold replays a higher one: the sentences under it are no evidence.
        self.evidence = [Evidence(**e) for e in evidence if e["score"] >= threshold]
        self.passages = [
            Passage(
                label=p["label"],
                chunk_id=p.get("chunk_id", p["label"]),
                title=p["title"],
                source=p["source"],
                url="",
                date="",
                headings=p["headings"],
                text=p["text"],
                dense_score=p["dense_score"],
                lexical_score=p["lexical_score"],
            )
            for p in passages
        ]

    def run(self, turn: Turn) -> None:
        turn.passages, turn.evidence = list(self.passages), list(self.evidence)
        if not turn.evidence:
            raise EndTurn(Outcome.UNANSWERABLE_NO_SOURCES, "no sentence of the passages answers (verifier, replayed)")


def replayable(case: Case, result: dict) -> bool:
    """A stored case the model answered, with what it was shown, asked outside a conversation."""
    return not case.history and bool(result.get("model_output") and result.get("passages") and result.get("evidence"))


class Replayer:
    """The steps after the model, built once from the settings; fed one stored case at a time."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, index: Index | None = None):
        self.index = index  # the run's index: the cited documents' stored text, for the cited-document check
        self.town = load_yaml(settings.town_file)
        # Where a reply that cannot answer sends the resident: by meaning with ``embedder``, else the reception.
        self.services = Services.from_town(
            self.town, embedder, float(settings.thresholds.get("services", {}).get("min_similarity", 0.3))
        )
        checks = settings.thresholds.get("guard", {}).get("checks", DEFAULT_CHECKS)
        verifier = load_cross_encoder(settings) if "supported_by_evidence" in checks else None
        self.guard = output_guard(self.town, settings.thresholds, verifier)
        self.threshold = float(settings.thresholds.get("evidence", {}).get("min_probability", 0.0))
        self.messages = Messages.load(settings.messages_file, self.town)
        self.max_question_chars = settings.max_question_chars
        self.model = FakeChatModel("")  # says, for each case, the reply stored for it
        neutralise = Neutraliser.from_routes(load_patterns(settings.routes_file)[0])
        self.composer = answer_composer(settings, self.model, neutralise)

    def _documents(self, reply: dict) -> dict[str, str] | None:
        """Each cited document's stored text, as a run reads it; None without the run's index."""
        if self.index is None:
            return None
        return {c["source"]: stored_document(self.index, c["source"]) for c in reply["citations"]}

    def case(self, case: Case, result: dict) -> dict:
        """One stored case again through the steps after the model, scored again."""
        self.model.replies = [result["model_output"]]
        steps = (
            InputGuard(self.max_question_chars),
            StoredPassages(result["passages"], result["evidence"], self.threshold),
            self.composer,
            self.guard,
        )
        answerer = Answerer(steps=steps, messages=self.messages, info={}, town=self.town, services=self.services)
        turn = answerer.answer(case.question, channel="eval")
        reply = turn.to_json()
        cited = [p for p in turn.passages if p.label in turn.cited_labels] if reply["citations"] else []
        return {
            **result,
            "answer": reply["answer"],
            "outcome": reply["outcome"],
            "citations": reply["citations"],
            "end_reason": turn.trace.get("end_reason", ""),
            **score_case(case, reply, {p.chunk_id: p.evidence for p in cited}, self._documents(reply)),
        }


def replay(
    run_dir: Path,
    cases: list[Case],
    settings: Settings,
    out_dir: Path,
    embedder: Embedder | None = None,
    index: Index | None = None,
) -> dict:
    """Replay ``run_dir`` for ``cases`` into ``out_dir`` (``results.jsonl``, ``summary.json``); the summary.
    ``embedder`` chooses the service a refusal names (without it, the reception); with the run's ``index``, the
    cited document is checked as a run checks it."""
    stored = {r["id"]: r for r in load_results(run_dir)}
    missing = [c.id for c in cases if c.id not in stored]
    if missing:
        raise ValueError(f"{len(missing)} case(s) of the dataset are not in {run_dir}: {', '.join(missing[:5])}")
    replayer = Replayer(settings, embedder, index)
    results = [replayer.case(c, stored[c.id]) if replayable(c, stored[c.id]) else stored[c.id] for c in cases]
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "results.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    summary = summarise(results)
    before = json.loads((run_dir / "summary.json").read_text(encoding="utf-8")).get("run", {})
    summary["run"] = before | {
        "replayed_from": str(run_dir),
        "replayed": sum(replayable(c, stored[c.id]) for c in cases),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary
