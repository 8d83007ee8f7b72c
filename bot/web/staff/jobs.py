"""Bookkeeping shared by the console's background jobs (question set runs, re-indexings): a status file written
whole, and whether the process a status names is still the one that wrote it."""

from __future__ import annotations

import json
import os
from pathlib import Path


def process_token(pid: int) -> str:
    """The process's id and start time: a restarted server reusing the pid (as in a container) is another process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return ""
    return f"{pid}:{fields[19]}"  # field 22 of proc(5), counted after the command name


def still_running(token: str) -> bool:
    """Whether the process a ``process_token`` names is alive and is the same process."""
    pid = token.split(":")[0]
    return pid.isdigit() and process_token(int(pid)) == token


def write_json(path: Path, data: dict) -> None:
    """Replace ``path`` with ``data`` as JSON in one step: a reader sees the old file or the new one, never half."""
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, path)
