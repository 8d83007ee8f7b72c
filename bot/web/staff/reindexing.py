"""A re-indexing started from the staff console: ``guichet ingest`` in a child process over the folders the live
index was built from, with its progress in ``<staff dir>/reindex/``.

The child runs at the ingestion's low priority and thread cap (``GUICHET_INGEST_NICE``, ``GUICHET_INGEST_THREADS``)
so residents keep their answers; the build writes a whole new generation and switches to it at the end, and each
worker then serves it (``Service.follow_index``). Until then the previous generation answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from bot.timestamps import now_iso
from bot.web.staff.jobs import process_token, still_running, write_json

STATES_FR = {
    "running": "en cours",
    "finished": "terminée",
    "failed": "en échec",
    "interrupted": "interrompue (serveur redémarré)",
}
LOG_LINES_SHOWN = 8


class ReindexBusy(Exception):
    """A re-indexing is already in progress."""


class Reindexing:
    def __init__(self, staff_dir: Path, index_dir: Path, program: tuple[str, ...] = (sys.executable, "-m", "guichet")):
        self.directory, self.index_dir, self.program = staff_dir / "reindex", index_dir, program
        self.status_path, self.progress_path = self.directory / "status.json", self.directory / "progress.json"
        self.log_path = self.directory / "ingest.log"
        self._lock = threading.Lock()

    def start(self, manifest: dict, who: str) -> dict:
        """Rebuild the index from the folders of ``manifest`` (the live generation's); ``ReindexBusy`` if one runs."""
        roots = [str(r) for r in manifest.get("roots", [])]
        missing = [r for r in roots if not Path(r).exists()]
        if not roots or missing:
            raise FileNotFoundError(", ".join(missing) or "aucun dossier enregistré dans l'index")
        with self._lock:
            if self.status()["state"] == "running":
                raise ReindexBusy
            self.directory.mkdir(parents=True, exist_ok=True)
            self.progress_path.unlink(missing_ok=True)
            command = [*self.program, "ingest", *roots, "--index", str(self.index_dir)]
            for pattern in manifest.get("exclude", []):
                command += ["--exclude", pattern]
            command += ["--status-file", str(self.progress_path)]
            with open(self.log_path, "w", encoding="utf-8") as log:
                child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
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
        status |= {"state": "finished" if code == 0 else "failed", "finished": now_iso()}
        if code != 0:
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
