"""Drive the real answer pipeline over a dataset and write results.jsonl and summary.json."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from bot.pipeline import Answerer
from bot.settings import load_yaml
from eval.dataset import Case
from eval.scoring import retrieval_rank, score_case, summarise


def run_case(answerer: Answerer, case: Case) -> dict:
    """One case through ``Answerer.answer`` (the same code residents reach), scored."""
    started = time.monotonic()
    turn = answerer.answer(case.question)
    latency = time.monotonic() - started
    reply = turn.to_json()
    cited = [p for p in turn.passages if p.label in turn.cited_labels] if reply["citations"] else []
    evidence = {p.chunk_id: " ".join([p.title, *p.headings, p.text]) for p in cited}
    retrieval = turn.metrics.get("retrieval", {})
    llm = turn.metrics.get("llm", {})
    return {
        "id": case.id,
        "question": case.question,
        "kind": case.kind,
        "category": case.category,
        "expected": case.must_include,
        "source": case.source,
        **({"extra": case.extra} if case.extra else {}),
        "answer": reply["answer"],
        "outcome": reply["outcome"],
        "citations": reply["citations"],
        "retrieved": [
            {"source": s, "score": sc}
            for s, sc in zip(retrieval.get("ranking", []), retrieval.get("ranking_scores", []), strict=False)
        ],
        "retrieval_rank": retrieval_rank(case, retrieval.get("ranking", [])),
        "top_dense": retrieval.get("top_dense"),
        "coverage": retrieval.get("coverage"),
        "passages": [
            {"label": p.label, "source": p.source, "headings": p.headings, "text": p.text} for p in turn.passages
        ],
        "latency_s": round(latency, 3),
        "prompt_tokens": llm.get("prompt_tokens", 0),
        "completion_tokens": llm.get("completion_tokens", 0),
        "end_reason": turn.metrics.get("end_reason", ""),
        **score_case(case, reply, evidence),
    }


def run(
    answerer: Answerer, cases: list[Case], out_dir: Path, progress: Callable[[int, int, dict], None] = lambda *_: None
) -> dict:
    """Run every case, write ``results.jsonl`` and ``summary.json`` into ``out_dir``; return the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    with open(out_dir / "results.jsonl", "w", encoding="utf-8") as fh:
        for n, case in enumerate(cases, 1):
            result = run_case(answerer, case)
            results.append(result)
            fh.write(json.dumps(result, ensure_ascii=False) + "\n")
            fh.flush()
            progress(n, len(cases), result)
    summary = summarise(results)
    summary["run"] = answerer.info | {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary


def gate(summary: dict, thresholds_file: Path) -> list[str]:
    """Failing metrics against the release thresholds (``min_*`` and ``max_*`` keys); empty means pass."""
    failures = []
    for key, limit in load_yaml(thresholds_file).get("gate", {}).items():
        bound, metric = key.split("_", 1)
        value = summary.get(metric)
        if value is None:
            continue
        if (bound == "min" and value < limit) or (bound == "max" and value > limit):
            failures.append(f"{metric} = {value} ({'minimum' if bound == 'min' else 'maximum'} {limit})")
    return failures


def run_retrieval(retriever, cases: list[Case]) -> dict:
    """Retrieval alone (no model): hit@1, hit@passages, hit@10 and MRR of each case's ``source``."""
    from contextlib import suppress

    from bot.outcomes import EndTurn
    from bot.turn import Turn

    ranks = []
    for case in (c for c in cases if c.source):
        turn = Turn(question=case.question)
        with suppress(EndTurn):  # the ranking is recorded before the no-source decision
            retriever.run(turn)
        ranks.append(retrieval_rank(case, turn.metrics["retrieval"]["ranking"]))
    n = len(ranks) or 1
    return {
        "cases": len(ranks),
        "hit_at_1": round(sum(1 for r in ranks if r == 1) / n, 4),
        f"hit_at_{retriever.passages}": round(sum(1 for r in ranks if r and r <= retriever.passages) / n, 4),
        "hit_at_10": round(sum(1 for r in ranks if r) / n, 4),
        "mrr": round(sum(1 / r for r in ranks if r) / n, 4),
    }
