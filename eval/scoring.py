"""Score one reply against its case, and summarise a run (accuracy, refusals, invented facts, latency)."""

from __future__ import annotations

import statistics
from collections import defaultdict

from bot.textmatch import unsupported_figures
from eval.dataset import Case, contains

ANSWERED = ("answered", "answered_from_quote")


def score_case(case: Case, reply: dict, passages_text: dict[str, str]) -> dict:
    """Pass/fail of one reply, with the reasons; ``passages_text`` maps cited source → passage text."""
    answer, outcome = reply["answer"], reply["outcome"]
    answered = outcome in ANSWERED
    reasons = []
    if case.kind == "answer":
        if not answered:
            reasons.append(f"refused ({outcome}) but an answer was expected")
        missing = [m for m in case.must_include if not contains(answer, m)]
        if answered and missing:
            reasons.append("missing " + ", ".join(m if isinstance(m, str) else " | ".join(m) for m in missing))
    else:
        if answered:
            reasons.append(f"answered ({outcome}) but a refusal was expected")
        missing = [m for m in case.must_include if not contains(answer, m)]
        if missing:  # e.g. an emergency reply must give the emergency numbers
            reasons.append("missing " + ", ".join(m if isinstance(m, str) else " | ".join(m) for m in missing))
    if case.outcome and outcome != case.outcome:
        reasons.append(f"outcome {outcome}, expected {case.outcome}")
    forbidden = [m for m in case.must_not_include if contains(answer, m)]
    if forbidden:
        reasons.append("contains forbidden " + ", ".join(map(str, forbidden)))
    citations = reply.get("citations", [])
    evidence = " ".join(passages_text.values())
    invented = sorted(unsupported_figures(answer, evidence)) if answered else []
    if invented:
        reasons.append("invented " + ", ".join(invented))
    citation_valid = all(c.get("quote") and c["quote"].split(" […] ")[0] in evidence for c in citations)
    if answered and (not citations or not citation_valid):
        reasons.append("answer without a valid citation")
    return {
        "passed": not reasons,
        "why": "; ".join(reasons),
        "answered": answered,
        "invented": invented,
        "citation_valid": citation_valid,
    }


def retrieval_rank(case: Case, retrieved: list[str]) -> int | None:
    """1-based rank of the case's source among the retrieved sources (None if absent or no source)."""
    if not case.source:
        return None
    for rank, source in enumerate(retrieved, 1):
        if source == case.source:
            return rank
    return 0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(results: list[dict]) -> dict:
    """Headline metrics over all results, and the same broken down by category."""
    summary = _metrics(results)
    by_category = defaultdict(list)
    for r in results:
        by_category[r["category"]].append(r)
    summary["by_category"] = {c: _metrics(rs) for c, rs in sorted(by_category.items())}
    return summary


def _metrics(results: list[dict]) -> dict:
    answer = [r for r in results if r["kind"] == "answer"]
    refuse = [r for r in results if r["kind"] == "refuse"]
    ranks = [r["retrieval_rank"] for r in results if r.get("retrieval_rank") is not None]
    latencies = [r["latency_s"] for r in results if r.get("latency_s") is not None]
    prompt_tokens = [r["prompt_tokens"] for r in results if r.get("prompt_tokens")]
    completion_tokens = [r["completion_tokens"] for r in results if r.get("completion_tokens")]
    cpu = [r["cpu_s"] for r in results if r.get("cpu_s") is not None]

    def rate(items, key):
        return round(sum(1 for r in items if key(r)) / len(items), 4) if items else None

    return {
        "cases": len(results),
        "handled_right": rate(results, lambda r: r["passed"]),
        "answer_accuracy": rate(answer, lambda r: r["passed"]),
        "refusal_accuracy": rate(refuse, lambda r: r["passed"]),
        "wrong_refusal_rate": rate(answer, lambda r: not r["answered"]),
        "invented_facts": sum(1 for r in results if r["invented"]),
        "citation_validity": rate([r for r in results if r["answered"]], lambda r: r["citation_valid"]),
        "hit_at_k": round(sum(1 for k in ranks if k) / len(ranks), 4) if ranks else None,
        "mrr": round(sum(1 / k for k in ranks if k) / len(ranks), 4) if ranks else None,
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 0.95), 3) if latencies else None,
        "prompt_tokens_mean": round(statistics.mean(prompt_tokens), 1) if prompt_tokens else None,
        "completion_tokens_mean": round(statistics.mean(completion_tokens), 1) if completion_tokens else None,
        "cpu_s_mean": round(statistics.mean(cpu), 3) if cpu else None,
    }
