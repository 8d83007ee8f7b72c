"""Shared fixtures: the demo corpus, a fake embedder and chat model, and the real models when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.embedder import FakeEmbedder
from bot.settings import REPO_ROOT

DEMO = REPO_ROOT / "corpora" / "demo"
SHARED = REPO_ROOT.parent / "shared" / "corpora"


@pytest.fixture
def demo_corpus() -> Path:
    return DEMO


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


def write(path: Path, text: str | bytes) -> Path:
    """Create a file (and its folders) for a test corpus."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
