"""Retrieval alone, without the model: how often the expected document comes first, in the two passages the
model is shown, in the first ten. For comparing indexes built another way (another precision, another CPU, another
chunking) in a minute instead of a full evaluation.

    python -m tools.retrieval --index var/index/shared --dataset eval/datasets/dev/shared.jsonl
    GUICHET_EMBEDDER_DTYPE=float32 python -m tools.retrieval --index /tmp/float32-index --dataset …

Only answerable cases with a source and no conversation before them count; the output is totals, never cases.
"""

from __future__ import annotations

import argparse
from contextlib import suppress
from pathlib import Path

from bot.answer.outcomes import EndTurn
from bot.answer.pipeline import Answerer
from bot.answer.steps.passage_retriever import PassageRetriever
from bot.answer.turn import Turn
from bot.settings import load_settings
from eval.dataset import load_cases
from eval.scoring import retrieval_rank


def ranks(retriever: PassageRetriever, dataset: Path) -> list[int]:
    """The rank of each case's source in the retriever's ranking (0: not in it)."""
    found = []
    for case in load_cases(dataset):
        if case.kind != "answer" or case.history or not case.source:
            continue
        turn = Turn(question=case.question)
        with suppress(EndTurn):  # the no-source gate: the ranking was traced before it
            retriever.run(turn)
        found.append(retrieval_rank(case, turn.trace["retrieval"]["ranking"]) or 0)
    return found


def summary(found: list[int]) -> dict[str, float | int]:
    """Hits at 1, 2 and 10 and the mean reciprocal rank.

    >>> summary([1, 2, 0, 3])
    {'cases': 4, 'hit@1': 1, 'hit@2': 2, 'hit@10': 3, 'mrr': 0.4583}
    """
    hits = {f"hit@{k}": sum(1 for rank in found if 0 < rank <= k) for k in (1, 2, 10)}
    mrr = round(sum(1 / rank for rank in found if rank) / len(found), 4) if found else 0.0
    return {"cases": len(found), **hits, "mrr": mrr}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, action="append", required=True, help="Repeatable.")
    args = parser.parse_args(argv)
    settings = load_settings(index_dir=args.index)
    retriever = Answerer.from_settings(settings).step(PassageRetriever)
    print(f"index {args.index}, embedder in {retriever.embedder.precision.dtype}")
    for dataset in args.dataset:
        print(dataset, summary(ranks(retriever, dataset)))


if __name__ == "__main__":
    main()
