"""Where the console's runs are kept: in the commune's database (``bot.state``), so that every worker and machine
lists, shows and compares the same runs, and one run at a time holds for all of them.

A run's row is its status (set, who, when, state, progress, the release gate's checks) and, once finished, the
runner's summary; each scored case is a row of ``run_results`` with the trace of its answer, both in the runner's
format (``eval.runner``). A run is alive while the worker running it is: on its own machine, while that process
lives (``bot.web.staff.jobs``); seen from another machine, while its worker says so every ``BEAT_SECONDS``. A run
whose worker has gone shows as interrupted and frees the slot.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from sqlalchemy import func, insert, select, update

from bot.state.database import Database
from bot.state.tables import run_results, runs
from bot.web.staff.jobs import still_running

MACHINE = socket.gethostname()
BEAT_SECONDS = 5.0  # how often a run's worker says it is still at it (and reads whether it was asked to stop)
SILENT_SECONDS = 60.0  # a run not heard of for this long, from another machine, is interrupted
RUN_LOCK = 0x6775_6965  # PostgreSQL advisory lock held while a run takes the slot
COLUMNS = {"set": "set_name", "by": "started_by"}  # a status's keys that the table names otherwise


class RunRecords:
    """The runs in the database at ``database_url``. A status is a dict: ``id``, ``set``, ``by``, ``started``,
    ``finished``, ``state``, ``done``, ``total``, ``passed``, ``process``, ``corpus_hash``, ``error``, and
    ``gate`` once finished."""

    def __init__(self, database_url: str):
        self.db = Database.open(database_url)

    # -- written by the worker running a run

    def claim(self, status: dict[str, Any]) -> str | None:
        """Record a new run, in state ``running``, unless another is alive: then the id of that one, and nothing
        written. Runs found dead on the way are marked interrupted."""
        with self.db.transaction() as db:
            if db.dialect.name == "postgresql":  # claims wait for each other (SQLite's BEGIN IMMEDIATE does so there)
                db.execute(select(func.pg_advisory_xact_lock(RUN_LOCK)))
            for row in db.execute(select(runs).where(runs.c.state == "running")).mappings().all():
                if _alive(row):
                    return str(row["id"])
                db.execute(update(runs).where(runs.c.id == row["id"]).values(state="interrupted"))
            db.execute(insert(runs).values(_row(status) | {"machine": MACHINE, "seen": time.time()}))
        return None

    def progress(self, run_id: str, done: int, passed: int, result: dict[str, Any], trace: dict[str, Any]) -> None:
        """Case number ``done`` scored: its result and trace, and the run's progress."""
        with self.db.transaction() as db:
            db.execute(insert(run_results).values(_result_row(run_id, done, result, trace)))
            db.execute(update(runs).where(runs.c.id == run_id).values(done=done, passed=passed, seen=time.time()))

    def finish(self, run_id: str, **fields: Any) -> None:
        """The run's end: ``state``, ``finished``, and ``gate``, ``summary`` or ``error`` as it ended."""
        with self.db.transaction() as db:
            db.execute(update(runs).where(runs.c.id == run_id).values(_row(fields)))

    def beat(self, run_id: str) -> bool:
        """The run's worker is still at it; whether an agent asked (through any worker) that the run stop."""
        with self.db.transaction() as db:
            db.execute(update(runs).where(runs.c.id == run_id).values(seen=time.time()))
            return bool(db.execute(select(runs.c.stop_asked).where(runs.c.id == run_id)).scalar())

    def ask_stop(self, run_id: str) -> bool:
        """Ask the worker of a run in progress to stop it (it reads this within ``BEAT_SECONDS``)."""
        with self.db.transaction() as db:
            asked = update(runs).where(runs.c.id == run_id, runs.c.state == "running").values(stop_asked=True)
            return bool(db.execute(asked).rowcount)

    def add(self, status: dict[str, Any], results: list[tuple[dict, dict]], summary: dict | None) -> bool:
        """Record a run made elsewhere (``guichet staff migrate``), with its ``(result, trace)`` pairs; False if
        a run of that id is already here."""
        with self.db.transaction() as db:
            if db.execute(select(runs.c.id).where(runs.c.id == status["id"])).first():
                return False
            row = _row(status) | {"summary": _json(summary), "machine": "", "seen": 0.0}
            db.execute(insert(runs).values(row))
            for position, (result, trace) in enumerate(results, 1):
                db.execute(insert(run_results).values(_result_row(status["id"], position, result, trace)))
        return True

    # -- read by every worker

    def status(self, run_id: str) -> dict[str, Any] | None:
        """A run's status; a run whose worker has gone is ``interrupted``."""
        with self.db.transaction() as db:
            row = db.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
        return _status(row) if row else None

    def all(self) -> list[dict[str, Any]]:
        """Every run, newest first."""
        with self.db.transaction() as db:
            rows = db.execute(select(runs).order_by(runs.c.id.desc())).mappings().all()
        return [_status(row) for row in rows]

    def running(self) -> str | None:
        """The run in progress, if its worker is alive."""
        with self.db.transaction() as db:
            rows = db.execute(select(runs).where(runs.c.state == "running")).mappings().all()
        return next((str(row["id"]) for row in rows if _alive(row)), None)

    def results(self, run_id: str) -> list[dict[str, Any]]:
        """The scored cases, in run order."""
        query = select(run_results.c.result).where(run_results.c.run_id == run_id).order_by(run_results.c.position)
        with self.db.transaction() as db:
            return [json.loads(text) for text in db.execute(query).scalars()]

    def summary(self, run_id: str) -> dict[str, Any]:
        """The runner's summary of a finished run (empty before)."""
        with self.db.transaction() as db:
            text = db.execute(select(runs.c.summary).where(runs.c.id == run_id)).scalar()
        return dict(json.loads(text)) if text else {}

    def trace(self, run_id: str, case_id: str) -> dict[str, Any]:
        """How the answer to one case was made."""
        query = select(run_results.c.trace).where(run_results.c.run_id == run_id, run_results.c.case_id == case_id)
        with self.db.transaction() as db:
            text = db.execute(query.order_by(run_results.c.position).limit(1)).scalar()
        return dict(json.loads(text)) if text else {}


def _alive(row: Any) -> bool:
    """Whether the worker of a run in state ``running`` still runs it."""
    if row["machine"] == MACHINE:
        return still_running(row["process"])
    return time.time() - row["seen"] < SILENT_SECONDS


def _row(status: dict[str, Any]) -> dict[str, Any]:
    """A status's fields as the table names and keeps them (the gate's checks and a summary as JSON)."""
    row = {COLUMNS.get(k, k): v for k, v in status.items() if k not in ("gate", "summary", "state_fr")}
    row |= {k: _json(status[k]) for k in ("gate", "summary") if k in status}
    return row


def _status(row: Any) -> dict[str, Any]:
    keys = ("started", "finished", "state", "done", "total", "passed", "process", "corpus_hash", "error")
    status = {"id": row["id"], "set": row["set_name"], "by": row["started_by"]} | {k: row[k] for k in keys}
    if row["gate"] is not None:
        status["gate"] = json.loads(row["gate"])
    if status["state"] == "running" and not _alive(row):
        status["state"] = "interrupted"
    return status


def _result_row(run_id: str, position: int, result: dict[str, Any], trace: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "position": position,
        "case_id": str(result["id"]),
        "result": json.dumps(result, ensure_ascii=False),
        "trace": json.dumps(trace, ensure_ascii=False, default=str),  # as the file was written: a trace may hold dates
    }


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)
