"""A re-indexing started from the staff console: ``guichet sync`` in a child process when the live index was built
from the town's sources file, else ``guichet ingest`` over the folders it was built from; its progress in
``<staff dir>/reindex/``.

The child runs at the ingestion's low priority and thread cap (``GUICHET_INGEST_NICE``, ``GUICHET_INGEST_THREADS``)
so residents keep their answers; the build writes a whole new generation and switches to it at the end, and each
worker then serves it (``Service.follow_index``). Until then the previous generation answers.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from bot.timestamps import now_iso
from bot.web.staff.jobs import process_token, still_running, write_json

STATES_FR = {
    "running": "en cours",
    "finished": "terminée",
    "partial": "terminée, mais une source n'a pas pu être lue (son dernier contenu est gardé)",
    "failed": "en échec",
    "interrupted": "interrompue (serveur redémarré)",
}
LOG_LINES_SHOWN = 8
log = logging.getLogger(__name__)


class ReindexBusy(Exception):
    """A re-indexing is already in progress."""


class Reindexing:
    def __init__(
        self,
        staff_dir: Path,
        index_dir: Path,
        program: tuple[str, ...] = (sys.executable, "-m", "guichet"),
        sources_dir: Path | None = None,
    ):
        self.directory, self.index_dir, self.program = staff_dir / "reindex", index_dir, program
        self.sources_dir = sources_dir  # where the child keeps the sources' copies (a commune's own, when several)
        self.status_path, self.progress_path = self.directory / "status.json", self.directory / "progress.json"
        self.log_path = self.directory / "ingest.log"
        self._lock = threading.Lock()

    def start(self, manifest: dict, who: str) -> dict:
        """Update the index as the live generation was built (``manifest``): its sources file synced again, or its
        folders read again; ``ReindexBusy`` if an update runs."""
        if manifest.get("sources_file"):
            roots = [str(manifest["sources_file"])]
            command = [*self.program, "sync", "--sources", roots[0], "--index", str(self.index_dir)]
        else:
            roots = [str(r) for r in manifest.get("roots", [])]
            command = [*self.program, "ingest", *roots, "--index", str(self.index_dir)]
            for pattern in manifest.get("exclude", []):
                command += ["--exclude", pattern]
        missing = [r for r in roots if not Path(r).exists()]
        if not roots or missing:
            raise FileNotFoundError(", ".join(missing) or "aucun dossier enregistré dans l'index")
        command += ["--status-file", str(self.progress_path)]
        with self._lock:
            if self.status()["state"] == "running":
                raise ReindexBusy
            self.directory.mkdir(parents=True, exist_ok=True)
            self.progress_path.unlink(missing_ok=True)
            with open(self.log_path, "w", encoding="utf-8") as log:
                env = os.environ | ({"GUICHET_SOURCES_DIR": str(self.sources_dir)} if self.sources_dir else {})
                child = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
                )
            status = {
                "state": "running",
                "by": who,
                "started": now_iso(),
                "finished": "",
                "process": process_token(child.pid),
                "roots": roots,
                "error": "",
            }
            write_json(self.status_path, status)
        threading.Thread(target=self._wait, args=(child, status), name="reindex", daemon=True).start()
        return status

    def _wait(self, child: subprocess.Popen, status: dict) -> None:
        code = child.wait()
        synced = "sync" in child.args
        state = "finished" if code == 0 else "partial" if code == 1 and synced else "failed"
        status |= {"state": state, "finished": now_iso()}
        if state != "finished":
            status["error"] = "\n".join(self.log_tail())
        write_json(self.status_path, status)

    def status(self) -> dict:
        """The last re-indexing and its progress (``stage``, ``done``, ``total``); ``state`` "none" if never."""
        try:
            status = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {"state": "none", "state_fr": ""}
        if status["state"] == "running" and not still_running(status.get("process", "")):
            status["state"] = "interrupted"
        try:
            status |= json.loads(self.progress_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            status |= {"stage": "Démarrage", "done": 0, "total": 0}
        status["state_fr"] = STATES_FR[status["state"]]
        return status

    def log_tail(self) -> list[str]:
        """The last lines the build printed (its French error message when it failed)."""
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        return [line for line in lines if line.strip()][-LOG_LINES_SHOWN:]


class SyncSchedule:
    """Every ``hours``, the town's sources synced again (``Reindexing.start`` with the live index's manifest), by one
    worker of the service: the one holding ``<staff dir>/reindex/schedule.lock``. An index not built from a
    sources file is left alone (its folders are updated by hand)."""

    def __init__(
        self, reindexing: Reindexing, hours: float, manifest: Callable[[], dict | None], offset_hours: float = 0.0
    ):
        self.reindexing, self.hours, self.manifest = reindexing, hours, manifest
        self.offset_hours = offset_hours  # several communes' syncs spread over the period, not all at once
        self._stop = threading.Event()
        self._lock_file: IO[bytes] | None = None

    def start(self) -> bool:
        """Start the schedule in this worker, unless another worker of the service already runs it."""
        self.reindexing.directory.mkdir(parents=True, exist_ok=True)
        handle = open(self.reindexing.directory / "schedule.lock", "ab")  # noqa: SIM115 - held while the worker lives
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        threading.Thread(target=self._run, name="sync-schedule", daemon=True).start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._lock_file:
            self._lock_file.close()
            self._lock_file = None

    def _run(self) -> None:
        if self._stop.wait(self.offset_hours * 3600):
            return
        while not self._stop.wait(self.hours * 3600):
            self.due()

    def due(self) -> dict | None:
        """One scheduled update: its status, or None when there is nothing to sync or one already runs."""
        manifest = self.manifest()
        if not manifest or not manifest.get("sources_file"):
            return None
        try:
            return self.reindexing.start(manifest, "mise à jour planifiée")
        except (ReindexBusy, FileNotFoundError) as exc:
            log.warning("scheduled sync not started: %s", exc or "an update is running")
            return None
