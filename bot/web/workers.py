"""Readiness of a service run as several worker processes (``guichet serve --workers N``).

Each worker loads its models on its own, and a client's connection may reach any of them, so one worker's "ready"
says little: a load balancer that trusted it would send residents to a worker still loading ("Le service
démarre"). The serving command makes a folder and tells the workers how many they are; each worker marks itself
ready there, and ``/readyz`` says ready only once every worker has. A worker that died (and the one the server
restarts in its place) counts only while its process is alive.

>>> roll = WorkerRoll(folder, expected=2)  # doctest: +SKIP
>>> roll.mark_ready(); roll.loading()  # doctest: +SKIP
1
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FOLDER_VARIABLE = "GUICHET_SERVE_READY_DIR"  # set by ``guichet serve`` for its workers, not by the town
COUNT_VARIABLE = "GUICHET_SERVE_WORKERS"


@dataclass(frozen=True)
class WorkerRoll:
    folder: Path
    expected: int

    @classmethod
    def from_environment(cls) -> WorkerRoll | None:
        folder, count = os.environ.get(FOLDER_VARIABLE), os.environ.get(COUNT_VARIABLE)
        return cls(Path(folder), int(count)) if folder and count else None

    def environment(self) -> dict[str, str]:
        """What the serving command passes to its workers."""
        return {FOLDER_VARIABLE: str(self.folder), COUNT_VARIABLE: str(self.expected)}

    def mark_ready(self, pid: int | None = None) -> None:
        (self.folder / str(pid or os.getpid())).touch()

    def loading(self) -> int:
        """How many workers are not ready yet."""
        ready = sum(1 for mark in self.folder.iterdir() if mark.name.isdigit() and _alive(int(mark.name)))
        return max(self.expected - ready, 0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True
