"""Runs of a question set started from the staff console: in the background, one at a time, on disk.

Each run has a folder ``<staff dir>/runs/<id>/`` with ``status.json`` (state and progress, rewritten after each
case, so a page reload or another worker reads it), the runner's ``results.jsonl`` and ``summary.json``, and
``traces.jsonl`` (how each answer was made, for the case pages). ``runs/ACTIVE`` names the run in progress: a
second start is refused while it exists and its process is alive, whichever worker asks.

A run's turns go through the residents' capacity gate (``enter``), and each waits while a resident's turn is in
progress: a run slows down under load, residents do not.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

from bot.errors import explained
from bot.timestamps import now_iso
from bot.web.staff.jobs import process_token, still_running, write_json
from eval.dataset import Case
from eval.runner import InProcess, Observation, gate_checks, load_results, run

log = logging.getLogger(__name__)
ACTIVE = "ACTIVE"
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
    def __init__(self, staff_dir: Path, gate_file: Path):
        self.directory, self.gate_file = staff_dir / "runs", gate_file
        self._stops: dict[str, threading.Event] = {}

    # -- starting and stopping

    def start(self, answerer, set_name: str, cases: list[Case], who: str, enter: Enter) -> str:
        """Start a run of ``cases`` in a background thread; ``RunBusy`` if one is in progress."""
        run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        self._claim(run_id)
        folder = self.directory / run_id
        folder.mkdir(parents=True)
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
        self._write_status(run_id, status)
        stop = self._stops.setdefault(run_id, threading.Event())
        target = ThroughTheGate(InProcess(answerer), enter, stop)
        thread = threading.Thread(target=self._work, args=(status, cases, target), name=f"run-{run_id}", daemon=True)
        thread.start()
        return run_id

    def stop(self, run_id: str) -> bool:
        """Ask the run to stop after its current case (only the worker running it can)."""
        event = self._stops.get(run_id)
        if event is None:
            return False
        event.set()
        return True

    def _claim(self, run_id: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = self.directory / ACTIVE
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                holder = self.active()
                if holder:
                    raise RunBusy(holder) from None
                lock.unlink(missing_ok=True)  # its process is gone: the lock is stale
                continue
            with os.fdopen(fd, "w") as out:
                out.write(run_id)
            return
        raise RunBusy("?")

    def active(self) -> str | None:
        """The run in progress, if its process is still alive."""
        try:
            run_id = (self.directory / ACTIVE).read_text().strip()
        except FileNotFoundError:
            return None
        status = self.status(run_id)
        return run_id if status and status["state"] == "running" else None

    def _work(self, status: dict, cases: list[Case], target: ThroughTheGate) -> None:
        run_id = status["id"]
        folder = self.directory / run_id
        try:
            with open(folder / "traces.jsonl", "w", encoding="utf-8") as traces:

                def progress(done: int, total: int, result: dict) -> None:
                    trace = target.last.reply.get("trace", {}) if target.last else {}
                    traces.write(json.dumps({"id": result["id"], "trace": trace}, ensure_ascii=False, default=str))
                    traces.write("\n")
                    traces.flush()
                    status.update(done=done, passed=status["passed"] + bool(result["passed"]))
                    self._write_status(run_id, status)

                context = {"set": status["set"], "by": status["by"], "with_validated": False}
                summary = run(target, cases, folder, progress, context)
            status.update(state="finished", gate=gate_checks(summary, self.gate_file))
        except Stopped:
            status["state"] = "stopped"
        except Exception as exc:  # noqa: BLE001 - whatever broke is shown to staff, and logged
            log.exception("console run %s failed", run_id)
            status.update(state="failed", error=explained(exc))
        finally:
            status["finished"] = now_iso()
            self._write_status(run_id, status)
            (self.directory / ACTIVE).unlink(missing_ok=True)
            self._stops.pop(run_id, None)

    # -- reading

    def _write_status(self, run_id: str, status: dict) -> None:
        write_json(self.directory / run_id / "status.json", status)

    def status(self, run_id: str) -> dict | None:
        """A run's state and progress; a run whose process has gone is ``interrupted``."""
        if not _is_run_id(run_id):
            return None
        try:
            status = json.loads((self.directory / run_id / "status.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        if status["state"] == "running" and not still_running(status.get("process", "")):
            status["state"] = "interrupted"
        status["state_fr"] = STATES_FR[status["state"]]
        return status

    def list(self) -> list[dict]:
        """Every run, newest first."""
        if not self.directory.exists():
            return []
        found = (self.status(p.name) for p in sorted(self.directory.iterdir(), reverse=True) if p.is_dir())
        return [s for s in found if s]

    def results(self, run_id: str) -> list[dict]:
        try:
            return load_results(self.directory / run_id)
        except FileNotFoundError:
            return []

    def summary(self, run_id: str) -> dict:
        try:
            return json.loads((self.directory / run_id / "summary.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def trace(self, run_id: str, case_id: str) -> dict:
        try:
            lines = (self.directory / run_id / "traces.jsonl").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return {}
        return next((row["trace"] for row in map(json.loads, lines) if row["id"] == case_id), {})


def _is_run_id(value: str) -> bool:
    """A run id as ``start`` makes them (never a path)."""
    return len(value) == 20 and value.replace("-", "").isalnum() and "/" not in value
