"""``guichet models verifier-data`` and ``guichet models train-verifier``: the verifier, rebuilt from the documents."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.settings import load_settings

DATA_DIR = Path(__file__).resolve().parent.parent / "training" / "data"
QUESTIONS = DATA_DIR / "questions.jsonl"
PAIRS = DATA_DIR / "pairs.jsonl.gz"
INDEXES = ("shared=var/index/shared", "demo=var/index/demo")
EVAL_FOLDERS = ("eval/datasets",)
IndexesOpt = Annotated[
    list[str] | None, typer.Option("--index", help="NAME=DIR, one per corpus (default: shared and demo).")
]


def _indexes(pairs: list[str] | None) -> dict:
    from bot.engines.index import Index

    found = {}
    for item in pairs or INDEXES:
        name, _, folder = item.partition("=")
        found[name] = Index.open(Path(folder))
    return found


def answers_by_the_embedder(card: dict, pairs: list, vectors: Any, cross_encoder: Any) -> None:
    """Set the card's *answers* judgement to the embedder, its calibration fitted on the training side, with its
    report on the valid side beside the cross-encoder's (docs/verifier.md says why the embedder answers)."""
    from bot.engines.verifier import EmbedderVerifier
    from training.calibration import fit_calibration
    from training.report import report

    calibration = fit_calibration(vectors, pairs)
    card.update(answers_by="embedder", answers_calibration=[round(x, 6) for x in calibration])
    verifier = EmbedderVerifier(vectors.embedder, calibration, cross_encoder)
    card["answers_report"] = report(verifier, pairs)["answers"]


def register(models_app: typer.Typer) -> None:
    """Add the verifier's commands to ``guichet models``."""

    @models_app.command("verifier-data")
    def verifier_data(
        per_document: Annotated[int, typer.Option(help="Sentences asked about per document.")] = 2,
        per_town_document: Annotated[int, typer.Option(help="Per document of the demo town.")] = 12,
        parallel: Annotated[int, typer.Option(help="Questions written at once (llama_server slots).")] = 1,
        limit: Annotated[int, typer.Option(help="Stop after this many sentences (0: all).")] = 0,
        indexes: IndexesOpt = None,
    ) -> None:
        """Write the verifier's training questions with the local model (resumable; hours on 2 cores)."""
        from bot.answer.pipeline import resolve_llm_path
        from bot.engines.llm import load_chat_model
        from training.questions import in_rounds, targets, write_questions

        settings = load_settings()
        todo = []
        for name, index in _indexes(indexes).items():
            todo += targets(index, name, per_town_document if name == "demo" else per_document)
        todo = in_rounds(todo)  # one sentence of every document first: a run stopped early still covers them all
        if limit:
            todo = todo[:limit]
        model = load_chat_model(settings, resolve_llm_path(settings))
        typer.echo(f"{len(todo)} sentences; writing to {QUESTIONS}")
        for written in write_questions(model, todo, QUESTIONS, parallel):
            if written % 20 == 0:
                typer.echo(f"  {written} written")

    @models_app.command("train-verifier")
    def train_verifier(
        layers: Annotated[int, typer.Option(help="Encoder layers read (of 24).")] = 4,
        epochs: Annotated[int, typer.Option()] = 2,
        indexes: IndexesOpt = None,
        rebuild_pairs: Annotated[bool, typer.Option(help="Build the pairs again from the questions.")] = False,
    ) -> None:
        """Build the pairs from the generated questions, train the verifier, write models/verifier/ and its report."""
        from bot.answer.pipeline import resolve_embedder_path
        from bot.engines.embedder import SentenceTransformerEmbedder
        from bot.engines.verifier import CARD, VERIFIER_DIR, CrossEncoderVerifier
        from training.pairs import (
            PairBuilder,
            Vectors,
            evaluation_questions,
            read_pairs,
            row_pairs,
            with_sides,
            without_leaks,
            write_pairs,
        )
        from training.report import report
        from training.train import Recipe, train

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        settings = load_settings()
        base = resolve_embedder_path(settings)
        vectors = Vectors(SentenceTransformerEmbedder(base, settings.embedder_dtype))  # one embedder, each text once
        held_out = evaluation_questions([Path(f) for f in EVAL_FOLDERS])
        if rebuild_pairs or not PAIRS.exists():
            if not QUESTIONS.exists():
                raise typer.BadParameter(f"No {QUESTIONS} — run 'guichet models verifier-data' first.")
            records = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
            builder = PairBuilder(_indexes(indexes), vectors, held_out)
            pairs = row_pairs(builder.indexes, builder)
            for n, record in enumerate(records, 1):
                pairs += builder.pairs(record)
                if n % 50 == 0:
                    typer.echo(f"  {n}/{len(records)} records, {len(pairs)} pairs")
            pairs = with_sides(pairs)
            write_pairs(pairs, PAIRS)
            typer.echo(f"{len(pairs)} pairs ({builder.dropped_as_leaks} generated questions dropped as leaks)")
        pairs, leaked = without_leaks(read_pairs(PAIRS), vectors, held_out)
        if leaked:  # the tracked pairs are what the verifier is trained on (``guichet eval leaks`` reads them)
            write_pairs(pairs, PAIRS)
        typer.echo(f"{leaked} training question(s) too close to an evaluation question: not trained on")
        card = train(pairs, base, VERIFIER_DIR, Recipe(layers=layers, epochs=epochs))
        verifier = CrossEncoderVerifier(base, VERIFIER_DIR, settings.embedder_dtype)
        card["report"] = report(verifier, pairs)  # the valid side: documents training never saw
        card["questions_dropped_as_leaks"] = leaked
        answers_by_the_embedder(card, pairs, vectors, verifier)
        (VERIFIER_DIR / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        typer.echo(json.dumps(card["report"], indent=2, ensure_ascii=False))

    @models_app.command("calibrate-verifier")
    def calibrate_verifier() -> None:
        """Fit the embedder's *answers* calibration again on the tracked pairs, the cross-encoder unchanged: for a
        change in how the embedder reads a sentence (``document_text``). ``train-verifier`` does the same at its
        end."""
        from bot.answer.pipeline import load_cross_encoder, resolve_embedder_path
        from bot.engines.embedder import SentenceTransformerEmbedder
        from bot.engines.verifier import CARD, VERIFIER_DIR
        from training.pairs import Vectors, read_pairs

        settings = load_settings()
        card_path = VERIFIER_DIR / CARD
        card = json.loads(card_path.read_text(encoding="utf-8"))
        vectors = Vectors(SentenceTransformerEmbedder(resolve_embedder_path(settings), settings.embedder_dtype))
        answers_by_the_embedder(card, read_pairs(PAIRS), vectors, load_cross_encoder(settings))
        card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        typer.echo(json.dumps({k: card[k] for k in ("answers_calibration", "answers_report")}, indent=1))

    @models_app.command("verifier-report")
    def verifier_report(
        dataset: Annotated[list[Path], typer.Option(help="Dev cases (.jsonl); never the test split.")],
        index: Annotated[Path, typer.Option(help="The index those cases are asked of.")],
    ) -> None:
        """The verifier on a dev split's questions through the real retriever: AUC, and per threshold the answer
        cases whose best sentence answers and passes, the no-source cases kept under it (choosing the threshold)."""
        from bot.answer.pipeline import load_verifier, resolve_embedder_path
        from bot.answer.steps.passage_retriever import PassageRetriever
        from bot.engines.embedder import SentenceTransformerEmbedder
        from bot.engines.index import Index
        from eval.dataset import load_cases
        from eval.verifier_dev import dev_pairs, dev_report

        if any("test" in path.parts[-2] for path in dataset):
            raise typer.BadParameter("Thresholds are chosen on dev only.")
        settings = load_settings()
        embedder = SentenceTransformerEmbedder(resolve_embedder_path(settings), settings.embedder_dtype)
        retriever = PassageRetriever(embedder, Index.open(index), settings.thresholds["retrieval"])
        cases = [case for path in dataset for case in load_cases(path)]
        pairs = dev_pairs(retriever, cases)
        thresholds = [round(0.05 * n, 2) for n in range(1, 20)]
        report = dev_report(load_verifier(settings, embedder), pairs, thresholds)
        typer.echo(json.dumps(report, indent=1, ensure_ascii=False))
