"""``guichet eval …``: question sets through the real pipeline, gates, validation, replays, leaks, diffs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.errors import GuichetError
from bot.settings import load_yaml
from guichet.common import IndexOpt, err, fail, out, print_summary
from guichet.common import answerer as _answerer
from guichet.common import settings as _settings

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate the bot on question sets and gate releases.")
_fail, _print_summary = fail, print_summary


@eval_app.command("run")
def eval_run(
    dataset: Annotated[Path, typer.Option(help="Cases, .jsonl or .csv.")],
    index: IndexOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where results, summary and report go.")] = Path("var/eval"),
    gate_file: Annotated[Path, typer.Option("--gate", help="Release thresholds.")] = Path("eval/gate.yaml"),
    url: Annotated[str | None, typer.Option(help="Evaluate a deployed instance instead (its base URL).")] = None,
    only: Annotated[str | None, typer.Option(help="'retrieval': score retrieval alone, no model.")] = None,
    with_validated: Annotated[
        bool, typer.Option("--with-validated", help="Also serve the answers staff validated (off: test the pipeline).")
    ] = False,
    no_gate: Annotated[bool, typer.Option("--no-gate", help="Report the gate, exit 0 (tuning runs on dev).")] = False,
):
    """Run a dataset through the real pipeline; exit 1 if the release gate fails (unless --no-gate)."""
    from eval import report
    from eval.dataset import load_cases
    from eval.runner import InProcess, OverHttp, gate, run

    try:
        cases = load_cases(dataset)
        gate(summary={}, thresholds_file=gate_file)  # a broken gate file fails before a long run
    except GuichetError as exc:
        _fail(exc)
    if only == "retrieval":
        return _eval_retrieval(cases, index)
    if only is not None:
        _fail(GuichetError(f"--only accepts 'retrieval', not {only!r}."))
    target = (
        OverHttp(url, town_file=_settings().town_file)
        if url
        else InProcess(_answerer(index, serve_validated_answers=with_validated))
    )
    context = {"dataset": str(dataset), "gate": load_yaml(gate_file), "with_validated": with_validated}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as bar:
        task = bar.add_task("Évaluation", total=len(cases))
        summary = run(
            target, cases, out_dir, progress=lambda n, total, r: bar.update(task, completed=n), context=context
        )
    _print_summary(summary)
    failures = gate(summary, gate_file)
    out.print(f"Rapport : {report.write(out_dir, failures)}")
    _exit_on_gate(failures, enforced=not no_gate)


def _exit_on_gate(failures: list[str], enforced: bool = True) -> None:
    if failures:
        err.print("[bold red]Seuils de mise en production non atteints :[/]\n  " + "\n  ".join(failures))
        if enforced:
            raise typer.Exit(1)
        return
    out.print("[bold green]Seuils de mise en production atteints.[/]")


def _eval_retrieval(cases, index: Path | None) -> None:
    from bot.answer.pipeline import resolve_embedder_path
    from bot.answer.steps.passage_retriever import PassageRetriever
    from bot.engines.embedder import SentenceTransformerEmbedder
    from bot.engines.index import Index
    from eval.runner import run_retrieval

    settings = _settings(index_dir=index)
    # A build yields the CPU to a model serving residents on the same machine. Set before any thread starts (on
    # Linux the nice value is per thread, inherited by the threads created after); never raised.
    if settings.ingest_nice > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, settings.ingest_nice)
    try:
        embedder = SentenceTransformerEmbedder(
            resolve_embedder_path(settings), settings.embedder_dtype, threads=settings.ingest_threads
        )
        retriever = PassageRetriever(embedder, Index.open(settings.index_dir), settings.thresholds["retrieval"])
    except GuichetError as exc:
        _fail(exc)
    _print_summary(run_retrieval(retriever, cases))


@eval_app.command("voice")
def eval_voice(
    dataset: Annotated[Path, typer.Option(help="Cases, .jsonl or .csv.")],
    index: IndexOpt = None,
):
    """Measure the phone channel: voice turn latency and spoken length of the replies."""
    from bot.answer.steps.passage_retriever import PassageRetriever
    from bot.phone.dialog import VoiceDialog
    from bot.phone.menu import sections_by_document
    from eval.dataset import load_cases
    from eval.voice import measure

    try:
        cases = load_cases(dataset)
    except GuichetError as exc:
        _fail(exc)
    answerer = _answerer(index)
    sections = sections_by_document(answerer.step(PassageRetriever).index.chunks)
    dialog = VoiceDialog(answerer, answerer.messages, answerer.town.get("voice", {}), sections=sections)
    _print_summary(measure(dialog, cases))


@eval_app.command("gate")
def eval_gate(
    out_dir: Annotated[Path, typer.Argument(help="Folder of a finished run (with summary.json).")],
    gate_file: Annotated[Path, typer.Option("--gate", help="Release thresholds.")] = Path("eval/gate.yaml"),
):
    """Check a finished run against the release thresholds; exit 1 if one is not met."""
    from eval.runner import gate

    try:
        summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
        failures = gate(summary, gate_file)
    except FileNotFoundError:
        _fail(GuichetError(f"No summary.json in {out_dir} — run 'guichet eval run --out {out_dir}' first."))
    except GuichetError as exc:
        _fail(exc)
    _exit_on_gate(failures)


@eval_app.command("validate")
def eval_validate(
    out_dir: Annotated[Path, typer.Argument(help="Folder of a finished run (in process).")],
    case: Annotated[list[str] | None, typer.Option(help="Id of a case whose answer you approve (repeatable).")] = None,
    all_passed: Annotated[bool, typer.Option("--all-passed", help="Approve every answered case that passed.")] = False,
    by: Annotated[str, typer.Option(help="Who validates (recorded with the answer).")] = "staff",
):
    """Mark evaluated answers as validated: served as they are, in milliseconds, until the corpus changes."""
    from bot.answer.validated_answers import ValidatedAnswers
    from eval.validate import validate_run

    settings = _settings()
    if not case and not all_passed:
        _fail(GuichetError("Name the approved cases with --case ID (repeatable), or pass --all-passed."))
    try:
        added = validate_run(out_dir, ValidatedAnswers(settings.validated_answers_file), case or [], all_passed, by)
    except GuichetError as exc:
        _fail(exc)
    out.print(f"{len(added)} réponse(s) validée(s) ajoutée(s) à {settings.validated_answers_file}: {', '.join(added)}")


@eval_app.command("paraphrases")
def eval_paraphrases(
    pairs: Annotated[Path, typer.Argument(help="Pairs file (eval/datasets/paraphrases/dev.jsonl or test.jsonl).")],
    index: IndexOpt = None,
    cases: Annotated[bool, typer.Option("--cases", help="Also list each pair (dev only: never tune on test).")] = False,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the summary and rows as JSON.")] = None,
):
    """Validated answers found by meaning: paraphrases served, near misses refused, lookup time."""
    from eval.paraphrases import load_pairs, run_pairs, summarise

    try:
        rows = run_pairs(_answerer(index), load_pairs(pairs))
    except GuichetError as exc:  # the lookup by meaning is off: nothing to measure
        _fail(exc)
    summary = summarise(rows)
    for key, value in summary.items():
        out.print(f"{key}: {value}")
    if cases:
        for r in rows:
            if bool(r["served"]) != r["same"] or (r["served"] and r["served"] != r["validated"]):
                verdict = "manqué" if r["same"] else "FAUX"
                line = f"[{verdict}] {r['asked']} ← {r['validated']} ({r['similarity']}, {r['why']})"
                out.print(line, markup=False)
    if out_file:
        out_file.write_text(json.dumps({"summary": summary, "rows": rows}, ensure_ascii=False, indent=1))


@eval_app.command("replay")
def eval_replay(
    run_dir: Annotated[Path, typer.Argument(help="Folder of a finished in-process run.")],
    dataset: Annotated[Path, typer.Option(help="The cases of that run, .jsonl or .csv.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where the replayed run goes.")] = Path("var/eval/replay"),
    index_dir: Annotated[
        Path | None, typer.Option("--index", help="The run's index: the cited documents are read from it.")
    ] = None,
):
    """Score a run's model replies again with today's checks and thresholds, without the language model."""
    from bot.answer.pipeline import resolve_embedder_path
    from bot.engines.embedder import SentenceTransformerEmbedder
    from bot.engines.index import Index
    from eval.dataset import load_cases
    from eval.replay import replay

    settings = _settings()
    if index_dir is None:
        out.print("Sans --index, le document cité n'est pas comparé au document attendu (score moins strict).")
    try:
        embedder = SentenceTransformerEmbedder(resolve_embedder_path(settings), settings.embedder_dtype)
        index = Index.open(index_dir) if index_dir else None
        summary = replay(run_dir, load_cases(dataset), settings, out_dir, embedder, index)
    except FileNotFoundError as exc:
        _fail(GuichetError(f"{exc.filename} not found: the folder must hold a finished run."))
    except ValueError as exc:
        _fail(GuichetError(str(exc)))
    _print_summary(summary)
    replayed = summary["run"]["replayed"]
    out.print(f"{replayed} réponses du modèle rejouées. Comparer : guichet eval diff {run_dir} {out_dir}")


@eval_app.command("leaks")
def eval_leaks():
    """Evaluation questions that stand, in other words, in what drives the bot (cosine >= 0.92); exit 1 if any."""
    from bot.answer.pipeline import resolve_embedder_path
    from bot.engines.embedder import SentenceTransformerEmbedder
    from eval.leaks import LEAK_COSINE, driving_texts, evaluation_questions, find_leaks

    settings = _settings()
    embedder = SentenceTransformerEmbedder(resolve_embedder_path(settings), settings.embedder_dtype)
    questions, texts = evaluation_questions(), driving_texts(settings)
    leaks = find_leaks(embedder, questions, texts)
    for leak in leaks:
        out.print(f"{leak.case_id}  {leak.cosine}  {leak.kind} : {leak.text}")
    found = f"{len(questions)} questions d'évaluation, {len(texts)} textes, seuil {LEAK_COSINE}"
    out.print(f"{found} : {len(leaks)} fuite(s)")
    if leaks:
        raise typer.Exit(1)


@eval_app.command("gaps")
def eval_gaps(
    dataset: Annotated[list[Path], typer.Option(help="Dev cases (.jsonl); never the test split.")],
    topics: Annotated[Path, typer.Option(help="Case ids by topic.")] = Path("eval/datasets/dev/gap-topics.yaml"),
):
    """The staff's gap report on a dev split's unanswerable questions: its groups against the topics a person
    names, at each cut distance (choosing gaps.max_distance)."""
    from bot.answer.pipeline import resolve_embedder_path
    from bot.engines.embedder import SentenceTransformerEmbedder
    from bot.web.staff.gap_report import QuestionVectors
    from eval.dataset import load_cases
    from eval.gaps import gap_measure, topic_of

    if any("test" in path.parts[-2] for path in dataset):
        _fail(GuichetError("Thresholds are chosen on dev only."))
    settings = _settings()
    embedder = SentenceTransformerEmbedder(resolve_embedder_path(settings), settings.embedder_dtype)
    cases = [case for path in dataset for case in load_cases(path)]
    measured = gap_measure(cases, topic_of(topics), QuestionVectors(embedder), [0.05 * n for n in range(2, 15)])
    table = Table("distance", "groupes", "thèmes", "précision", "rappel", "d'accord", title="Groupes et thèmes")
    for distance, row in measured.items():
        table.add_row(f"{distance:.2f}", *(str(row[k]) for k in ("groups", "topics", "precision", "recall", "agreed")))
    out.print(table)


@eval_app.command("diff")
def eval_diff(
    old: Annotated[Path, typer.Argument(help="Folder of the earlier run.")],
    new: Annotated[Path, typer.Argument(help="Folder of the later run.")],
):
    """Show regressions and fixes case by case between two runs."""
    from eval.diff import diff

    try:
        changes = diff(old, new)
    except FileNotFoundError as exc:
        _fail(GuichetError(f"{exc.filename} not found: both folders must hold a finished run."))
    table = Table("indicateur", "avant", "après", title="Évolution")
    for name, (before, after) in changes["metrics"].items():
        table.add_row(name, str(before), str(after))
    out.print(table)
    for title, rows in (("Régressions", changes["regressions"]), ("Corrections", changes["fixes"])):
        out.print(f"[bold]{title} ({len(rows)})[/]")
        for r in rows:
            out.print(
                f"  {r['id']} — {r['question']}\n    → {r['answer']}" + (f"\n    ({r['why']})" if r["why"] else "")
            )
    if changes["only_old"] or changes["only_new"]:
        out.print(f"Cas présents d'un seul côté : {changes['only_old'] + changes['only_new']}")


@eval_app.command("convert")
def eval_convert(
    source: Annotated[Path, typer.Argument(help="Dataset to read (.jsonl or .csv).")],
    target: Annotated[Path, typer.Argument(help="Dataset to write (.jsonl or .csv).")],
):
    """Convert a dataset between JSONL and CSV (for editing in a spreadsheet)."""
    from eval.dataset import load_cases, save_cases

    try:
        cases = load_cases(source)
    except GuichetError as exc:
        _fail(exc)
    save_cases(cases, target)
    out.print(f"{len(cases)} cas écrits dans {target}")
