"""Runs of a question set started from the staff console: in the background, one at a time, in the database.

A run's status (state and progress, updated after each case, so a page reload or another worker or machine reads
it), its scored cases with the trace of each answer, and the runner's summary are kept by ``RunRecords``
(``bot.web.staff.run_records``), in the runner's format. A second start is refused while a run is alive, whichever
worker asks; a stop asked through any worker reaches the one running it.

A run's turns go through the residents' capacity gate (``enter``), and each waits while a resident's turn is in
progress: a run slows down under load, residents do not.

Deployments from before the database kept each run in a folder (``<staff dir>/runs/<id>/``: ``status.json``,
``results.jsonl``, ``summary.json``, ``traces.jsonl``); ``import_folders`` (``guichet staff migrate``) reads them
once.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.errors import GuichetError, explained
from bot.timestamps import now_iso
from bot.web.staff.jobs import process_token, still_running
from bot.web.staff.run_records import BEAT_SECONDS, RunRecords
from eval.dataset import Case
from eval.runner import InProcess, Observation, gate_checks, load_results, run

log = logging.getLogger(__name__)
FOLDER = "runs"  # where a deployment from before the database kept them, in its staff folder
STATES_FR = {
    "running": "en cours",
    "finished": "terminé",
    "stopped": "arrêté",
    "failed": "en échec",
    "interrupted": "interrompu (serveur redémarré)",
}
Enter = Callable[[threading.Event], AbstractContextManager | None]  # None: stopped while waiting


class RunBusy(Exception):
    """Another run is in progress; ``run_id`` names it."""

    def __init__(self, run_id: str):
        super().__init__(run_id)
        self.run_id = run_id


class Stopped(Exception):
    """An agent stopped the run."""


def legacy_folders(staff_dir: Path) -> list[Path]:
    """Run folders of a file-based deployment still waiting for ``guichet staff migrate``."""
    return sorted(p.parent for p in (staff_dir / FOLDER).glob("*/status.json") if _is_run_id(p.parent.name))


class ThroughTheGate:
    """The runner's target: ``InProcess`` with each question admitted by ``enter``, keeping each case's trace."""

    def __init__(self, inner: InProcess, enter: Enter, stop: threading.Event):
        self.inner, self.enter, self.stop, self.info = inner, enter, stop, inner.info
        self.last: Observation | None = None

    def ask(self, question: str, history: list[str] = ()) -> Observation:
        if self.stop.is_set():
            raise Stopped
        admission = self.enter(self.stop)
        if admission is None:
            raise Stopped
        with admission:
            self.last = self.inner.ask(question, history)
        return self.last


class Runs:
    """The runs in the database at ``database_url``, judged against the release gate of ``gate_file``; one
    object per worker holds the stop switches of the runs it started."""

    def __init__(self, database_url: str, gate_file: Path):
        self.records, self.gate_file = RunRecords(database_url), gate_file
        self._stops: dict[str, threading.Event] = {}

    # -- starting and stopping

    def start(self, answerer, set_name: str, cases: list[Case], who: str, enter: Enter) -> str:
        """Start a run of ``cases`` in a background thread; ``RunBusy`` if one is in progress."""
        run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        status = {
            "id": run_id,
            "set": set_name,
            "by": who,
            "started": now_iso(),
            "finished": "",
            "state": "running",
            "done": 0,
            "total": len(cases),
            "passed": 0,
            "process": process_token(os.getpid()),
            "corpus_hash": answerer.info["index"]["corpus_hash"],  # what an answer approved from this run is tied to
            "error": "",
        }
        holder = self.records.claim(status)
        if holder:
            raise RunBusy(holder)
        stop = self._stops.setdefault(run_id, threading.Event())
        target = ThroughTheGate(InProcess(answerer), enter, stop)
        thread = threading.Thread(target=self._work, args=(status, cases, target), name=f"run-{run_id}", daemon=True)
        thread.start()
        return run_id

    def stop(self, run_id: str) -> bool:
        """Ask the run to stop after its current case: at once if this worker runs it, else through the database
        (its worker reads the request within ``BEAT_SECONDS``). False if it is not in progress."""
        event = self._stops.get(run_id)
        if event is not None:
            event.set()
            return True
        return _is_run_id(run_id) and self.records.ask_stop(run_id)

    def active(self) -> str | None:
        """The run in progress, if its worker is still alive."""
        return self.records.running()

    def _work(self, status: dict, cases: list[Case], target: ThroughTheGate) -> None:
        run_id, passed = status["id"], 0
        ended = threading.Event()
        beat = threading.Thread(target=self._beat, args=(run_id, target.stop, ended), name=f"beat-{run_id}")
        beat.daemon = True
        beat.start()
        outcome: dict[str, Any] = {}
        try:
            with tempfile.TemporaryDirectory(prefix="guichet-run-") as scratch:  # the runner's own files: unused

                def progress(done: int, total: int, result: dict) -> None:
                    nonlocal passed
                    trace = target.last.reply.get("trace", {}) if target.last else {}
                    passed += bool(result["passed"])
                    self.records.progress(run_id, done, passed, result, trace)

                context = {"set": status["set"], "by": status["by"], "with_validated": False}
                summary = run(target, cases, Path(scratch), progress, context)
            outcome = {"state": "finished", "gate": gate_checks(summary, self.gate_file), "summary": summary}
        except Stopped:
            outcome = {"state": "stopped"}
        except Exception as exc:  # noqa: BLE001 - whatever broke is shown to staff, and logged
            log.exception("console run %s failed", run_id)
            outcome = {"state": "failed", "error": explained(exc)}
        finally:
            ended.set()
            self.records.finish(run_id, finished=now_iso(), **outcome)
            self._stops.pop(run_id, None)

    def _beat(self, run_id: str, stop: threading.Event, ended: threading.Event) -> None:
        """Say the run is alive until it ends, and stop it when an agent asked through another worker."""
        while not ended.wait(BEAT_SECONDS):
            try:
                if self.records.beat(run_id):
                    stop.set()
            except Exception as exc:  # noqa: BLE001 - a database hiccup: the next beat tries again
                log.warning("run %s: no sign of life written: %s", run_id, explained(exc))

    # -- reading

    def status(self, run_id: str) -> dict | None:
        """A run's state and progress; a run whose worker has gone is ``interrupted``."""
        status = self.records.status(run_id) if _is_run_id(run_id) else None
        return None if status is None else status | {"state_fr": STATES_FR[status["state"]]}

    def list(self) -> list[dict]:
        """Every run, newest first."""
        return [status | {"state_fr": STATES_FR[status["state"]]} for status in self.records.all()]

    def results(self, run_id: str) -> list[dict]:
        return self.records.results(run_id)

    def summary(self, run_id: str) -> dict:
        return self.records.summary(run_id)

    def trace(self, run_id: str, case_id: str) -> dict:
        return self.records.trace(run_id, case_id)

    def export(self, run_id: str, folder: Path) -> Path:
        """A finished run as the runner writes it (``results.jsonl``, ``summary.json``), for the tools that read
        run folders (``eval.diff``); returns ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.results(run_id))
        (folder / "results.jsonl").write_text(lines, encoding="utf-8")
        summary = json.dumps(self.summary(run_id), indent=2, ensure_ascii=False)
        (folder / "summary.json").write_text(summary, encoding="utf-8")
        return folder

    # -- from a file-based deployment

    def import_folders(self, staff_dir: Path) -> int:
        """Copy the run folders of ``staff_dir`` (written by Guichet before the database) in: how many were new.
        Every folder is read before anything is written; a run still in progress stops the import. The folders are
        left to the caller (``bot.web.staff.migration``)."""
        found = [_read_folder(folder) for folder in legacy_folders(staff_dir)]
        return sum(self.records.add(*record) for record in found)


def _read_folder(folder: Path) -> tuple[dict[str, Any], list[tuple[dict, dict]], dict | None]:
    """A run folder's status (a run left running by a server that has stopped: interrupted), its ``(result,
    trace)`` pairs and its summary."""
    try:
        written = json.loads((folder / "status.json").read_text(encoding="utf-8"))
        results = load_results(folder) if (folder / "results.jsonl").exists() else []
        traces_file = folder / "traces.jsonl"
        lines = traces_file.read_text(encoding="utf-8").splitlines() if traces_file.exists() else []
        traces = {row["id"]: row["trace"] for row in map(json.loads, filter(str.strip, lines))}
        summary_file = folder / "summary.json"
        summary = json.loads(summary_file.read_text(encoding="utf-8")) if summary_file.exists() else None
        status = {k: written.get(k, "") for k in ("set", "by", "started", "finished", "process", "corpus_hash")}
        status |= {k: int(written.get(k, 0)) for k in ("done", "total", "passed")}
        status |= {"id": folder.name, "state": str(written["state"]), "error": str(written.get("error", ""))}
    except (ValueError, KeyError, TypeError) as exc:
        raise GuichetError(f"{folder} est illisible ({exc}) : rien n'a été importé.") from None
    if status["state"] == "running":
        if still_running(str(status["process"])):
            raise GuichetError(
                f"L'essai {folder.name} est en cours : arrêtez « guichet serve », puis recommencez (rien n'a été "
                "importé)."
            )
        status["state"] = "interrupted"
    if "gate" in written:
        status["gate"] = written["gate"]
    return status, [(r, traces.get(r["id"], {})) for r in results], summary


def _is_run_id(value: str) -> bool:
    """A run id as ``start`` makes them (never a path)."""
    return len(value) == 20 and value.replace("-", "").isalnum() and "/" not in value
