"""Drive the real answer pipeline (in process, or a deployed instance over HTTP) over a dataset.

Writes ``results.jsonl`` (one scored case per line) and ``summary.json`` into the output folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.answer.outcomes import EndTurn
from bot.answer.pipeline import Answerer
from bot.answer.redaction import redact
from bot.answer.steps.passage_retriever import PassageRetriever
from bot.answer.turn import Turn
from bot.settings import load_yaml
from eval.dataset import Case
from eval.facts import stored_document
from eval.scoring import retrieval_rank, score_case, summarise


@dataclass
class Observation:
    """What one question produced: the public answer object, the passages shown to the model, and the text
    of the cited passages (the evidence figures are checked against)."""

    reply: dict
    passages: list[dict] = field(default_factory=list)
    evidence: dict[str, str] = field(default_factory=dict)
    cpu_s: float | None = None
    documents: dict[str, str] | None = None  # each cited document's text as stored at ingestion (in process only)
    found: list[dict] = field(default_factory=list)  # the sentences the verifier said answer (in process only)


class InProcess:
    """Asks ``Answerer.answer``: the same code residents reach, with full passages for diagnosis."""

    def __init__(self, answerer: Answerer):
        self.answerer, self.info, self.town = answerer, answerer.info, answerer.town
        self.index = answerer.step(PassageRetriever).index

    def ask(self, question: str, history: list[str] = ()) -> Observation:
        earlier: list[dict] = []
        for before in history:  # the conversation so far, as a session would hold it
            turn = self.answerer.answer(before, earlier, channel="eval")
            earlier.append({"question": turn.question, "outcome": turn.outcome})
        cpu = time.process_time()
        turn = self.answerer.answer(question, earlier, channel="eval")
        cpu = time.process_time() - cpu
        reply = turn.to_trace()
        cited = [p for p in turn.passages if p.label in turn.cited_labels] if reply["citations"] else []
        return Observation(
            reply=reply,
            passages=[
                {
                    "label": p.label,
                    "chunk_id": p.chunk_id,
                    "title": p.title,
                    "source": p.source,
                    "headings": p.headings,
                    "text": p.text,
                    "dense_score": p.dense_score,
                    "lexical_score": p.lexical_score,
                }
                for p in turn.passages
            ],
            evidence={p.chunk_id: p.evidence for p in cited},
            found=[asdict(e) for e in turn.evidence],
            cpu_s=round(cpu, 3),
            documents={c["source"]: stored_document(self.index, c["source"]) for c in reply["citations"]},
        )


class OverHttp:
    """Asks a deployed instance through ``POST /api/v1/turn``. Without the passages, figures are checked
    against the cited quotes only (stricter than in process)."""

    def __init__(self, url: str, timeout: float = 120.0, client=None, town_file: Path | None = None):
        import httpx

        self.client = client or httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self.info, self.town = {"url": url}, load_yaml(town_file) if town_file else {}

    def ask(self, question: str, history: list[str] = ()) -> Observation:
        session = None
        for before in history:  # the same session holds the conversation so far
            session = self._post(before, session).get("session_id")
        reply = self._post(question, session)
        return Observation(reply=reply, evidence={str(i): c["quote"] for i, c in enumerate(reply["citations"])})

    def _post(self, text: str, session_id: str | None, attempts: int = 5) -> dict:
        body = {"text": text, "channel": "eval", **({"session_id": session_id} if session_id else {})}
        for _ in range(attempts):  # a busy or rate-limited server says when to come back
            response = self.client.post("/api/v1/turn", json=body)
            if response.status_code not in (429, 503):
                break
            time.sleep(min(30, int(response.headers.get("Retry-After", "5"))))
        response.raise_for_status()
        return response.json()


def run_case(target, case: Case) -> dict:
    """One case through ``target.ask``, scored."""
    started = time.monotonic()
    seen = target.ask(case.question, case.history)
    latency = time.monotonic() - started
    trace = seen.reply.get("trace", {})  # in process only: a deployed instance keeps its trace to itself
    retrieval, llm = trace.get("retrieval", {}), trace.get("llm", {})
    ranking = retrieval.get("ranking", [])
    return {
        "id": case.id,
        "question": redact(case.question)[0],  # results are kept and shared: personal data stays masked
        "kind": case.kind,
        "category": case.category,
        "expected": case.must_include,
        "accepted": case.outcomes,
        "ordinary": case.ordinary,
        "source": case.source,
        **({"extra": case.extra} if case.extra else {}),
        "answer": seen.reply["answer"],
        "outcome": seen.reply["outcome"],
        "citations": seen.reply["citations"],
        "retrieved": [
            {"source": s, "score": sc} for s, sc in zip(ranking, retrieval.get("ranking_scores", []), strict=False)
        ],
        "retrieval_rank": retrieval_rank(case, ranking),
        "top_dense": retrieval.get("top_dense"),
        "evidence_score": trace.get("evidence", {}).get("top_score"),
        "service": trace.get("service"),
        "passages": seen.passages,
        "evidence": seen.found,
        "latency_s": round(latency, 3),
        "retrieval_s": retrieval.get("seconds", 0.0),
        "llm_s": llm.get("seconds"),  # None when no model call was needed (routes, validated answers)
        "first_token_s": llm.get("first_token_seconds"),
        "model_output": llm.get("output"),  # what the model wrote, before the output guard checked it
        "cpu_s": seen.cpu_s,
        "prompt_tokens": llm.get("prompt_tokens", 0),
        "completion_tokens": llm.get("completion_tokens", 0),
        "end_reason": trace.get("end_reason", ""),
        "route": trace.get("route", ""),
        "served_validated": bool(trace.get("validated_answer")),
        **score_case(case, seen.reply, seen.evidence, seen.documents, getattr(target, "town", {})),
    }


def load_results(run_dir: Path) -> list[dict]:
    """The scored cases of a finished run (``results.jsonl``), in run order."""
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()]


def run(
    target,
    cases: list[Case],
    out_dir: Path,
    progress: Callable[[int, int, dict], None] = lambda *_: None,
    context: dict | None = None,
) -> dict:
    """Run every case, write ``results.jsonl`` and ``summary.json`` into ``out_dir``; return the summary.

    ``target`` is ``InProcess(answerer)`` or ``OverHttp(url)``; ``context`` is recorded in the summary.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    with open(out_dir / "results.jsonl", "w", encoding="utf-8") as fh:
        for n, case in enumerate(cases, 1):
            result = run_case(target, case)
            results.append(result)
            fh.write(json.dumps(result, ensure_ascii=False) + "\n")
            fh.flush()
            progress(n, len(cases), result)
    summary = summarise(results)
    summary["run"] = target.info | (context or {}) | {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary


def gate(summary: dict, thresholds_file: Path) -> list[str]:
    """Failing metrics against the release thresholds (``min_*`` and ``max_*`` keys); empty means pass."""
    return [
        f"{c['metric']} = {c['value']} ({'minimum' if c['bound'] == 'min' else 'maximum'} {c['limit']})"
        for c in gate_checks(summary, thresholds_file)
        if not c["ok"]
    ]


def gate_checks(summary: dict, thresholds_file: Path) -> list[dict]:
    """Each release threshold the summary has a value for: ``metric``, ``bound`` (min/max), ``limit``, ``value``,
    ``ok``."""
    checks = []
    for key, limit in load_yaml(thresholds_file).get("gate", {}).items():
        bound, metric = key.split("_", 1)
        value = summary.get(metric)
        if value is None:
            continue
        ok = not ((bound == "min" and value < limit) or (bound == "max" and value > limit))
        checks.append({"metric": metric, "bound": bound, "limit": limit, "value": value, "ok": ok})
    return checks


def run_retrieval(retriever, cases: list[Case]) -> dict:
    """Retrieval alone (no model): hit@1, hit@passages, hit@10 and MRR of each case's ``source``."""
    ranks = []
    for case in (c for c in cases if c.source):
        turn = Turn(question=case.question)
        with suppress(EndTurn):  # the ranking is recorded before the no-source decision
            retriever.run(turn)
        ranks.append(retrieval_rank(case, turn.trace["retrieval"]["ranking"]))
    n = len(ranks) or 1
    return {
        "cases": len(ranks),
        "hit_at_1": round(sum(1 for r in ranks if r == 1) / n, 4),
        f"hit_at_{retriever.passages}": round(sum(1 for r in ranks if r and r <= retriever.passages) / n, 4),
        "hit_at_10": round(sum(1 for r in ranks if r) / n, 4),
        "mrr": round(sum(1 / r for r in ranks if r) / n, 4),
    }
