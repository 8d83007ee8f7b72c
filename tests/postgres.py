"""A real PostgreSQL server for the tests that need one, started and stopped by the test itself.

Debian's ``postgresql`` package provides the binaries (``make database-server`` installs it). The server runs from
a throwaway folder, listening only on a Unix socket in that folder, with trust authentication: nothing else on the
machine can reach it, and it is gone after the test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def binaries() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not installed:
        raise RuntimeError("PostgreSQL is not installed: run `make database-server` (apt-get install postgresql).")
    return installed[-1].parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_postgres() -> Iterator[str]:
    """A fresh server; yields its SQLAlchemy URL (database ``postgres``, user ``guichet``)."""
    folder = Path(tempfile.mkdtemp(prefix="guichet-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the package's own user runs it
        shutil.chown(folder, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    bin_dir, data, port = binaries(), folder / "data", _free_port()
    run = {"check": True, "capture_output": True}
    subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "guichet", "-A", "trust",
                    "-E", "UTF8", "--no-sync"], **run)  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses='' -c fsync=off"
    start = [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w"]
    subprocess.run([*start, "start"], **run)
    try:
        yield f"postgresql+psycopg://guichet@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], **run)
        shutil.rmtree(folder, ignore_errors=True)
