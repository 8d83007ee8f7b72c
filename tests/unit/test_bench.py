"""The benchmark's naive configuration and its arithmetic, with the fake embedder and model."""

import json

from bot.engines.embedder import FakeEmbedder
from bot.engines.llm import FakeChatModel
from eval.bench import NaiveRag, latency_figures, markdown, ratios
from eval.dataset import load_cases
from eval.runner import run
from tests.conftest import DEMO, write

CASES = """\
{"id": "p1", "question": "prix du passeport majeur", "kind": "answer", "must_include": ["86 €"]}
{"id": "r1", "question": "Quel temps fera-t-il demain ?", "kind": "refuse", "outcome": "refused_out_of_scope"}
"""


def test_the_naive_configuration_answers_from_four_fixed_size_chunks(tmp_path):
    model = FakeChatModel("Le passeport coûte 86 €.", "Je ne sais pas.")
    naive, ingestion = NaiveRag.build([DEMO], [], FakeEmbedder(), model)
    assert ingestion["chunks"] > 13 and all(len(c["text"]) <= 1000 for c in naive.chunks)
    summary = run(naive, load_cases(write(tmp_path / "c.jsonl", CASES)), tmp_path / "naive")
    results = [json.loads(line) for line in (tmp_path / "naive" / "results.jsonl").read_text().splitlines()]
    assert [r["outcome"] for r in results] == ["answered", "unanswerable_no_sources"]
    assert len(results[0]["citations"]) == 4 and "Documents :" in model.calls[0][1]["content"]
    figures = latency_figures(results)
    assert figures["model_calls"] == 2 and figures["questions"] == 2
    assert summary["handled_right"] == figures["handled_right"]


def test_ratios_and_the_summary_table():
    guichet = {"total_p50_s": 2.0, "total_p95_s": 4.0, "first_token_p50_s": 1.0, "first_token_p95_s": 2.0}
    naive = {"total_p50_s": 8.0, "total_p95_s": 16.0, "first_token_p50_s": 5.0, "first_token_p95_s": 9.0}
    guichet |= {"prompt_tokens_mean": 400, "handled_right": 0.9, "invented": 0, "completion_tokens_mean": 30}
    naive |= {"prompt_tokens_mean": 1000, "handled_right": 0.5, "invented": 3, "completion_tokens_mean": 90}
    for side in (guichet, naive):
        side |= {"model_calls": 10, "retrieval_p50_s": 0.05, "overhead_p50_s": 0.01, "questions": 12}
    r = ratios(naive, guichet)
    assert r["naive_over_guichet_total_p50_s"] == 4.0 and r["naive_over_guichet_prompt_tokens_mean"] == 2.5
    report = {"guichet": guichet, "naive": naive, "ratios": r, "corpus": "demo", "dataset": "d", "machine": "2 CPU"}
    report |= {"validated_answers": {"validated": 3, "hit_p50_ms": 4.0, "hit_p95_ms": 6.0}, "peak_memory_mb": 3000}
    report["decoding"] = {"sample": 2, "decode_ms_per_token_schema": 60, "decode_ms_per_token_free": 55}
    report["decoding"] |= {"first_token_warm_prefix_s": 1.5, "first_token_cold_s": 2.5}
    table = markdown(report)
    assert "| total p50 (s) | 2.0 | 8.0 | 4.0 |" in table and "Peak memory" in table
