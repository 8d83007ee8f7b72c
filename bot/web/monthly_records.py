"""Records kept in monthly JSON Lines files with a retention: the questions no document answered
(``bot.web.gaps``), and, before the database, the residents' feedback (read once by ``guichet staff migrate``)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path


class MonthlyRecords:
    """Records appended to monthly JSON Lines files (``<prefix>-2026-11.jsonl``) in ``folder``; the months older
    than ``retention_days`` are deleted by ``purge``. Each record carries its ``day``, never a time of day."""

    def __init__(self, folder: Path, prefix: str, retention_days: int, today=dt.date.today):
        self.folder, self.prefix, self.retention_days, self.today = Path(folder), prefix, retention_days, today
        self._lock = threading.Lock()

    def files(self) -> list[Path]:
        """The monthly files, oldest first."""
        return sorted(self.folder.glob(f"{self.prefix}-*.jsonl"))

    def append(self, record: dict) -> dict:
        """Write ``record`` with today's ``day``; returns it."""
        day = self.today()
        record = {"day": day.isoformat(), **record}
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / f"{self.prefix}-{day:%Y-%m}.jsonl", "a", encoding="utf-8") as out:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return record

    def records(self, since: dt.date) -> list[dict]:
        """The records of ``since`` or later, oldest first (a damaged line is skipped, not fatal)."""
        found = []
        for path in self.files():
            if path.stem.removeprefix(f"{self.prefix}-") < f"{since:%Y-%m}":
                continue
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and str(record.get("day", "")) >= since.isoformat():
                    found.append(record)
        return sorted(found, key=lambda r: r["day"])

    def purge(self) -> list[Path]:
        """Delete the monthly files whose whole month is older than the retention period.

        Every worker purges at start-up, possibly at the same moment: a file another one deleted first is fine.
        """
        limit = self.today() - dt.timedelta(days=self.retention_days)
        removed = []
        for path in self.files():
            try:
                year, month = map(int, path.stem.removeprefix(f"{self.prefix}-").split("-"))
            except ValueError:
                continue
            month_end = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
            if month_end < limit:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed
