"""Experiment of issue #32, kept so its figures can be re-measured: does a query-side adapter, trained on the
verifier's generated *answers* pairs, make the embedder pick the answering sentence more often?

The embedder stays frozen; questions get ``normalize(q + q·U·V)`` (rank-r, zero at the start), trained with a
softmax over each question's answering sentence, its hard negatives and the other questions' answering sentences.
Measured on the generated pairs' valid side (documents never trained on) and on dev's candidate sentences through
the real retriever (``eval.verifier_dev.dev_pairs``). Dev only; never the test split.

    python -m tools.query_adapter vectors   # embeds every question and sentence once (~8 min here)
    python -m tools.query_adapter train     # the adapter for a few settings, base first (~1 min)
"""

from __future__ import annotations

import collections
import gzip
import json
import sys
from pathlib import Path

import numpy as np

OUT = Path("var/exp")
DEV_SETS = (("var/index/shared", ("shared", "shared-b")), ("var/index/demo", ("demo", "demo-b")))


def vectors() -> None:
    from bot.answer.pipeline import resolve_embedder_path
    from bot.answer.steps.passage_retriever import PassageRetriever
    from bot.engines.embedder import SentenceTransformerEmbedder
    from bot.engines.index import Index
    from bot.engines.verifier import document_text
    from bot.settings import Settings
    from eval.dataset import load_cases
    from eval.verifier_dev import dev_pairs

    settings = Settings()
    embedder = SentenceTransformerEmbedder(resolve_embedder_path(settings), settings.embedder_dtype)
    with gzip.open("training/data/pairs.jsonl.gz", "rt") as lines:
        rows = [json.loads(line) for line in lines]
    train = [r for r in rows if r["task"] == "answers"]
    dev = []
    for index, names in DEV_SETS:
        retriever = PassageRetriever(embedder, Index.open(Path(index)), settings.thresholds["retrieval"])
        for name in names:
            for p in dev_pairs(retriever, load_cases(Path(f"eval/datasets/dev/{name}.jsonl"))):
                dev.append({"a": p.a, "b": p.b, "label": p.label, "kind": p.kind, "case": f"{name}:{p.sources[0]}"})
    questions = sorted({r["a"] for r in train} | {r["a"] for r in dev})
    readings = sorted({r["b"] for r in train} | {r["b"] for r in dev})
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(
        OUT / "vectors.npz",
        qv=np.asarray(embedder.embed_queries(questions), dtype=np.float32),
        dv=np.asarray(embedder.embed_documents([document_text(r) for r in readings]), dtype=np.float32),
    )
    data = {"questions": questions, "readings": readings, "train": train, "dev": dev}
    (OUT / "pairs.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def train() -> None:
    import torch

    saved = np.load(OUT / "vectors.npz")
    data = json.loads((OUT / "pairs.json").read_text(encoding="utf-8"))
    q_of = {q: i for i, q in enumerate(data["questions"])}
    d_of = {r: i for i, r in enumerate(data["readings"])}
    queries, sentences = torch.tensor(saved["qv"]), torch.tensor(saved["dv"])

    def groups(rows):
        found = collections.defaultdict(lambda: ([], []))
        for r in rows:
            found[r["a"]][0 if r["label"] else 1].append(d_of[r["b"]])
        return dict(found)

    training = groups([r for r in data["train"] if r["split"] == "train"])
    valid = groups([r for r in data["train"] if r["split"] == "valid"])
    dev = collections.defaultdict(list)
    for r in data["dev"]:
        dev[r["case"]].append((q_of[r["a"]], d_of[r["b"]], r["label"], r["kind"]))

    def generated_top1(encode) -> float:
        hits = [
            int((encode(queries[q_of[q]][None])[0] @ sentences[pos + neg].T).argmax() < len(pos))
            for q, (pos, neg) in valid.items()
            if pos and neg
        ]
        return round(sum(hits) / len(hits), 3)

    def dev_figures(encode) -> tuple[float, float]:
        top1, answerable, no_source = [], [], []
        for rows in dev.values():
            labels = np.array([r[2] for r in rows])
            scores = (encode(queries[rows[0][0]][None])[0] @ sentences[[r[1] for r in rows]].T).numpy()
            if rows[0][3] == "dev_answer" and labels.any():
                top1.append(labels[scores.argmax()])
                answerable.append(scores.max())
            elif rows[0][3] == "dev_no_source":
                no_source.append(scores.max())
        a, b = np.array(answerable), np.array(no_source)
        auc = (a[:, None] > b[None]).mean() + 0.5 * (a[:, None] == b[None]).mean()
        return round(float(np.mean(top1)), 3), round(float(auc), 3)

    def adapter(rank=32, reg=1e-2, scale=20.0, epochs=30, lr=1e-3, in_batch=True):
        torch.manual_seed(0)
        u = torch.nn.Parameter(torch.randn(768, rank) * 0.01)
        v = torch.nn.Parameter(torch.zeros(rank, 768))
        optimiser = torch.optim.Adam([u, v], lr=lr)

        def encode(q):
            return torch.nn.functional.normalize(q + (q @ u) @ v, dim=-1)

        items = [(q_of[q], pos, neg) for q, (pos, neg) in training.items() if pos]
        rng = np.random.default_rng(0)
        for _ in range(epochs):
            rng.shuffle(items)
            for start in range(0, len(items), 32):
                batch = items[start : start + 32]
                encoded = encode(queries[[b[0] for b in batch]])
                loss = 0
                for k, (_, pos, neg) in enumerate(batch):
                    others = [b[1][0] for j, b in enumerate(batch) if j != k] if in_batch else []
                    scores = scale * (encoded[k] @ sentences[pos[:1] + neg + others].T)
                    loss = loss + torch.nn.functional.cross_entropy(scores[None], torch.tensor([0]))
                loss = loss / len(batch) + reg * (u.pow(2).sum() + v.pow(2).sum())
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        return encode

    print("base", generated_top1(lambda q: q), *dev_figures(lambda q: q))
    for setting in ({}, {"reg": 1e-1}, {"reg": 1e-3}, {"epochs": 10}, {"in_batch": False}, {"rank": 8}):
        encode = adapter(**setting)
        with torch.no_grad():
            print(setting, generated_top1(encode), *dev_figures(encode), flush=True)


if __name__ == "__main__":
    {"vectors": vectors, "train": train}[sys.argv[1]]()
