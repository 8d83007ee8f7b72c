"""``guichet bench``: Guichet against a naive RAG configuration, side by side, on one corpus and question set.

Everything runs in one process on the same machine with the same models, so ratios and token counts are
comparable even where absolute seconds are noisy. Writes ``bench.json`` and ``bench.md`` into the output folder.

The naive configuration is the tutorial default (``../shared/MODELS.md``): 1000-character chunks with 200 overlap,
the same embedder and FAISS, top-4 dense passages, one generic prompt, no schema, 256 tokens, no cache.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from bot.answer.pipeline import Answerer
from bot.answer.steps.answer_composer import AnswerComposer, answer_schema
from bot.answer.validated_answers import ValidatedAnswers
from bot.engines.embedder import Embedder
from bot.engines.llm import ChatModel
from bot.settings import Settings
from eval.dataset import Case
from eval.runner import InProcess, Observation, load_results, run
from eval.scoring import percentile
from eval.validate import validate_run
from ingestion.builder import build, discover
from ingestion.loaders import load

NAIVE_SYSTEM = (
    "Tu es un assistant utile pour les habitants d'une commune. Utilise les documents ci-dessous pour répondre à "
    "la question. Si tu ne connais pas la réponse, dis simplement que tu ne sais pas."
)
NAIVE_REFUSALS = re.compile(
    r"je ne sais pas|pas d.information|aucune information|ne (trouve|contient|mentionne|pr[ée]cise) pas"
    r"|n.est pas (mentionn|indiqu|pr[ée]cis)|je ne peux pas",
    re.I,
)


@dataclass
class NaiveRag:
    """The naive configuration as an evaluation target (same ``ask`` as ``InProcess``)."""

    embedder: Embedder
    model: ChatModel
    chunks: list[dict]
    vectors: np.ndarray
    info: dict

    @classmethod
    def build(cls, roots: list[Path], exclude: list[str], embedder: Embedder, model: ChatModel) -> tuple:
        """Index ``roots`` the naive way; returns the target and its ingestion figures."""
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        started = time.monotonic()
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
        base, files = discover(roots, exclude)
        chunks = []
        for path in files:
            try:
                doc = load(path, base)
            except Exception:  # the naive pipeline skips what it cannot read, as Guichet's builder reports it
                continue
            for piece in splitter.split_text(doc.markdown):
                chunks.append(
                    {"source": doc.source, "title": doc.title, "url": doc.url, "date": doc.date, "text": piece}
                )
        vectors = embedder.embed_documents([c["text"] for c in chunks])
        seconds = time.monotonic() - started
        figures = {"chunks": len(chunks), "seconds": round(seconds, 1), "chunks_per_s": round(len(chunks) / seconds, 2)}
        return cls(embedder, model, chunks, np.asarray(vectors, dtype=np.float32), {"config": "naive"}), figures

    def ask(self, question: str, history: list[str] = ()) -> Observation:
        """Answer ``question`` alone: the naive configuration keeps no conversation (``history`` is ignored)."""
        started, cpu = time.monotonic(), time.process_time()
        scores = self.vectors @ self.embedder.embed_query(question)
        top = [self.chunks[i] for i in np.argsort(-scores)[:4]]
        retrieval_s = time.monotonic() - started
        documents = "\n\n".join(f"Document {n} ({c['title']}) :\n{c['text']}" for n, c in enumerate(top, 1))
        messages = [
            {"role": "system", "content": NAIVE_SYSTEM},
            {"role": "user", "content": f"Documents :\n{documents}\n\nQuestion : {question}\nRéponse :"},
        ]
        completion = self.model.complete(messages, None, 256)
        answer = completion.text.strip()
        refused = bool(NAIVE_REFUSALS.search(answer)) or not answer
        citations = [
            {"title": c["title"], "source": c["source"], "url": c["url"], "date": c["date"], "quote": c["text"][:200]}
            for c in top
        ]
        reply = {
            "answer": answer,
            "outcome": "unanswerable_no_sources" if refused else "answered",
            "citations": [] if refused else citations,
            "seconds": time.monotonic() - started,
            "trace": {
                "retrieval": {"seconds": retrieval_s, "ranking": [c["source"] for c in top]},
                "llm": {
                    "seconds": completion.seconds,
                    "first_token_seconds": completion.first_token_seconds or completion.seconds,
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                },
            },
        }
        evidence = {f"{c['source']}#{n}": f"{c['title']} {c['text']}" for n, c in enumerate(top)}
        return Observation(reply=reply, evidence=evidence, cpu_s=round(time.process_time() - cpu, 3))


class PeakMemory:
    """Samples this process's resident memory every 0.2 s; ``peak_mb`` also reads the kernel's high-water mark."""

    def __init__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        process = psutil.Process()
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, process.memory_info().rss)

    def peak_mb(self) -> int:
        high_water = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return round(max(self.peak, high_water) / 2**20)

    def stop(self):
        self._stop.set()


def latency_figures(results: list[dict]) -> dict:
    """p50/p95 of total time and time to first token, token means, retrieval and non-model overhead."""
    model_turns = [r for r in results if r.get("llm_s") is not None]
    total = [r["latency_s"] for r in results]
    first = [r["first_token_s"] + r["retrieval_s"] for r in model_turns]
    overhead = [max(0.0, r["latency_s"] - r["llm_s"] - r["retrieval_s"]) for r in model_turns]
    return {
        "questions": len(results),
        "model_calls": len(model_turns),
        "handled_right": round(sum(r["passed"] for r in results) / len(results), 3),
        "invented": sum(bool(r["invented"]) for r in results),
        "total_p50_s": round(percentile(total, 0.5), 3),
        "total_p95_s": round(percentile(total, 0.95), 3),
        "first_token_p50_s": round(percentile(first, 0.5), 3),
        "first_token_p95_s": round(percentile(first, 0.95), 3),
        "prompt_tokens_mean": round(statistics.fmean(r["prompt_tokens"] for r in model_turns), 1) if model_turns else 0,
        "completion_tokens_mean": round(statistics.fmean(r["completion_tokens"] for r in model_turns), 1)
        if model_turns
        else 0,
        "retrieval_p50_s": round(percentile([r["retrieval_s"] for r in model_turns], 0.5), 4),
        "overhead_p50_s": round(percentile(overhead, 0.5), 4),
    }


def ingestion_figures(roots: list[Path], exclude: list[str], embedder: Embedder, out: Path) -> dict:
    """A fresh Guichet build and an unchanged rebuild of the corpus."""
    index = out / "index"
    shutil.rmtree(index, ignore_errors=True)
    first = build(roots, index, embedder, exclude)
    again = build(roots, index, embedder, exclude)
    return {
        "documents": first.documents,
        "chunks": first.chunks,
        "seconds": first.seconds,
        "chunks_per_s": round(first.chunks / first.seconds, 2),
        "unchanged_rebuild_s": again.seconds,
        "unchanged_rebuild_embedded": again.embedded,
        "index": str(index),
    }


def raw_embedder_chunks_per_s(index: Path, embedder: Embedder, sample: int = 256) -> float:
    """The embedder alone on the index's own passages (as formatted for it): the ceiling for ingestion."""
    from bot.engines.index import Index

    texts = [c.embedding_text() for c in Index.open(index).chunks[:sample]]
    started = time.monotonic()
    embedder.embed_documents(texts)
    return round(len(texts) / (time.monotonic() - started), 2)


def decoding_figures(answerer: Answerer, cases: list[Case], sample: int = 6) -> dict:
    """Cost of the JSON-schema grammar per generated token, and what reusing the system prompt's KV saves."""
    composer = answerer.step(AnswerComposer)
    model = composer.model
    with_schema, without, warm, cold = [], [], [], []
    for case in cases:
        if len(with_schema) >= sample:
            break
        turn = answerer.answer(case.question)
        if not turn.passages or "llm" not in turn.trace:
            continue
        messages = composer.prompt.messages(question=turn.question, passages=turn.passages)
        schema = answer_schema([p.label for p in turn.passages])
        for store, chosen in ((with_schema, schema), (without, None)):
            done = model.complete(messages, chosen, composer.max_tokens)
            if done.completion_tokens > 1:
                store.append((done.seconds - (done.first_token_seconds or 0)) / (done.completion_tokens - 1))
        warm.append(turn.trace["llm"]["first_token_seconds"])  # system prompt reused from the previous turn
        if hasattr(model, "llm"):
            model.llm.reset()  # forget every cached token: the whole prompt is processed again
            cold.append(model.complete(messages, schema, composer.max_tokens).first_token_seconds)
    ms = lambda values: round(1000 * statistics.fmean(values), 1) if values else None  # noqa: E731
    return {
        "decode_ms_per_token_schema": ms(with_schema),
        "decode_ms_per_token_free": ms(without),
        "first_token_warm_prefix_s": round(statistics.median(warm), 3) if warm else None,
        "first_token_cold_s": round(statistics.median(cold), 3) if cold else None,
        "sample": len(with_schema),
    }


def cache_figures(answerer: Answerer, run_dir: Path, out: Path) -> dict:
    """Validate every passed answer of the Guichet run, then ask those questions again."""
    from bot.answer.steps.validated_answer import ValidatedAnswerLookup

    store_path = out / "validated-answers.jsonl"
    store_path.unlink(missing_ok=True)
    store = ValidatedAnswers(store_path)
    added = validate_run(run_dir, store, [], all_passed=True, by="bench")
    lookup = answerer.step(ValidatedAnswerLookup)
    original, lookup.answers = lookup.answers, store
    try:
        by_id = {r["id"]: r for r in load_results(run_dir)}
        timings, missed = [], []
        for case_id in added:
            started = time.monotonic()
            turn = answerer.answer(by_id[case_id]["question"])
            timings.append(time.monotonic() - started)
            if not turn.trace.get("validated_answer"):  # reported, not asserted: the report is still written
                missed.append(case_id)
    finally:
        lookup.answers = original
    return {
        "validated": len(added),
        "not_served": missed,
        "hit_p50_ms": round(1000 * percentile(timings, 0.5), 1) if timings else None,
        "hit_p95_ms": round(1000 * percentile(timings, 0.95), 1) if timings else None,
    }


def ratios(naive: dict, guichet: dict) -> dict:
    def ratio(key):
        return round(naive[key] / guichet[key], 2) if guichet.get(key) else None

    keys = ("total_p50_s", "total_p95_s", "first_token_p50_s", "first_token_p95_s", "prompt_tokens_mean")
    return {f"naive_over_guichet_{k}": ratio(k) for k in keys}


def markdown(report: dict) -> str:
    g, n, r = report["guichet"], report["naive"], report["ratios"]

    def side_by_side(name: str, key: str, with_ratio: bool = True) -> tuple:
        return name, g[key], n[key], r.get(f"naive_over_guichet_{key}", "") if with_ratio else ""

    rows = [
        side_by_side("handled right", "handled_right", False),
        side_by_side("invented figures/contacts", "invented", False),
        side_by_side("total p50 (s)", "total_p50_s"),
        side_by_side("total p95 (s)", "total_p95_s"),
        side_by_side("first token p50 (s)", "first_token_p50_s"),
        side_by_side("first token p95 (s)", "first_token_p95_s"),
        side_by_side("prompt tokens (mean)", "prompt_tokens_mean"),
        side_by_side("completion tokens (mean)", "completion_tokens_mean", False),
        side_by_side("model calls", "model_calls", False),
        side_by_side("retrieval p50 (s)", "retrieval_p50_s", False),
        side_by_side("non-model overhead p50 (s)", "overhead_p50_s", False),
    ]
    lines = [
        f"Corpus `{report['corpus']}`, questions `{report['dataset']}` ({g['questions']}), {report['machine']}.",
        "",
        "| | Guichet | naive | naive ÷ Guichet |",
        "|---|---|---|---|",
        *(f"| {name} | {a} | {b} | {c} |" for name, a, b, c in rows),
        "",
    ]
    ing, cache, dec = report.get("ingestion") or {}, report["validated_answers"], report["decoding"]
    if ing.get("reused"):
        lines.append(
            f"- Ingestion not measured (existing index reused); the embedder alone: {ing['embedder_raw_chunks_per_s']} "
            f"passages/s. Naive ingestion: {report['naive_ingestion']['chunks']} chunks, "
            f"{report['naive_ingestion']['chunks_per_s']}/s."
        )
    elif ing:
        lines.append(
            f"- Ingestion: {ing['documents']} documents, {ing['chunks']} passages in {ing['seconds']} s "
            f"({ing['chunks_per_s']} passages/s; the embedder alone: {ing['embedder_raw_chunks_per_s']}/s); "
            f"unchanged re-ingestion {ing['unchanged_rebuild_s']} s, {ing['unchanged_rebuild_embedded']} embedded. "
            f"Naive ingestion: {report['naive_ingestion']['chunks']} chunks, "
            f"{report['naive_ingestion']['chunks_per_s']}/s."
        )
    lines.append(
        f"- Validated answers: {cache['validated']} served again in p50 {cache['hit_p50_ms']} ms, "
        f"p95 {cache['hit_p95_ms']} ms"
        + (f"; not served: {', '.join(cache['not_served'])}." if cache.get("not_served") else ".")
    )
    lines.append(
        f"- Decoding ({dec['sample']} prompts): {dec['decode_ms_per_token_schema']} ms/token with the JSON schema, "
        f"{dec['decode_ms_per_token_free']} ms/token without; first token with the system prompt's KV reused "
        f"{dec['first_token_warm_prefix_s']} s, with nothing reused {dec['first_token_cold_s']} s."
    )
    lines.append(f"- Peak memory (resident, whole run): {report['peak_memory_mb']} MB.")
    return "\n".join(lines) + "\n"


def bench(
    settings: Settings,
    corpus: list[Path],
    exclude: list[str],
    cases: list[Case],
    out: Path,
    index: Path | None,
    dataset_name: str = "",
    progress=print,
) -> dict:
    """Run everything; ``index`` reuses an existing Guichet index (skips the ingestion figures)."""
    from bot.answer.pipeline import resolve_embedder_path
    from bot.engines.embedder import SentenceTransformerEmbedder

    memory = PeakMemory()
    out.mkdir(parents=True, exist_ok=True)
    embedder = SentenceTransformerEmbedder(resolve_embedder_path(settings), settings.embedder_dtype)
    report: dict = {
        "corpus": " ".join(map(str, corpus)),
        "dataset": dataset_name,
        "machine": f"{os.cpu_count()} CPU, {round(psutil.virtual_memory().total / 2**30)} GiB",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if index is None:
        progress("Ingestion (Guichet)…")
        report["ingestion"] = ingestion_figures(corpus, exclude, embedder, out)
        index = Path(report["ingestion"]["index"])
    report.setdefault("ingestion", {"index": str(index), "reused": True})
    report["ingestion"]["embedder_raw_chunks_per_s"] = raw_embedder_chunks_per_s(index, embedder)
    answerer = Answerer.from_settings(settings.model_copy(update={"index_dir": index}))
    progress("Ingestion (naive)…")
    naive, report["naive_ingestion"] = NaiveRag.build(corpus, exclude, embedder, answerer.step(AnswerComposer).model)
    progress(f"{len(cases)} questions, Guichet…")
    run(InProcess(answerer), cases, out / "guichet")
    progress(f"{len(cases)} questions, naive…")
    run(naive, cases, out / "naive")
    progress("Validated answers, decoding…")
    report["validated_answers"] = cache_figures(answerer, out / "guichet", out)
    report["decoding"] = decoding_figures(answerer, cases)
    for name in ("guichet", "naive"):
        report[name] = latency_figures(load_results(out / name))
    report["ratios"] = ratios(report["naive"], report["guichet"])
    memory.stop()
    report["peak_memory_mb"] = memory.peak_mb()
    (out / "bench.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "bench.md").write_text(markdown(report), encoding="utf-8")
    return report
