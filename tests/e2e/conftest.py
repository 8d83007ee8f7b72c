"""The real server (`guichet serve`) started in a subprocess, for the end-to-end tests that need one."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bot.engines.llama_server import free_port
from bot.settings import REPO_ROOT

__all__ = ["free_port", "running_server", "wait_until_up"]


def wait_until_up(process: subprocess.Popen, url: str, within: float, name: str) -> None:
    """Poll ``url`` until it answers 200; fail the test if ``process`` exits or time runs out."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            pytest.fail(f"{name} exited: {printed_by(process)}")
        time.sleep(1)
    process.kill()
    pytest.fail(f"{name} not ready after {within} s: {printed_by(process)}")


def printed_by(process: subprocess.Popen) -> str:
    """The end of what a stopped ``process`` printed (its pipes closed)."""
    output = process.communicate(timeout=30)[0]
    return output[-3000:] if output else ""


@contextmanager
def running_server(index: Path, env: dict | None = None, ready_within: float = 180, args: tuple = ()):
    """Yield ``(base_url, output)`` once /readyz says ready; ``output()`` is what the server printed (after stop).
    What the server writes (validated answers, feedback, staff accounts) goes to a temporary folder unless ``env``
    names a place: a test never leaves state in the repository's ``var/``."""
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix="guichet-served-"))
    written = {
        "GUICHET_VALIDATED_ANSWERS_FILE": str(state / "validated-answers.jsonl"),
        "GUICHET_FEEDBACK_DIR": str(state / "feedback"),
        "GUICHET_STAFF_DIR": str(state / "staff"),
    }
    environment = os.environ | written | {"GUICHET_INDEX_DIR": str(index)} | (env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "guichet.cli", "serve", "--port", str(port), *args],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base, printed = f"http://127.0.0.1:{port}", []
    wait_until_up(process, f"{base}/readyz", ready_within, "guichet serve")
    try:
        yield base, lambda: "".join(printed)
    finally:
        process.terminate()
        printed.append(process.communicate(timeout=30)[0])


@pytest.fixture(scope="session")
def real_demo_index(tmp_path_factory) -> Path:
    """The demo corpus indexed with the real embedder, for the servers started here."""
    from bot.answer.pipeline import resolve_embedder_path
    from bot.engines.embedder import SentenceTransformerEmbedder
    from bot.settings import Settings
    from ingestion.builder import build
    from tests.conftest import DEMO

    index = tmp_path_factory.mktemp("served-demo-index")
    build([DEMO], index, SentenceTransformerEmbedder(resolve_embedder_path(Settings())))
    return index
