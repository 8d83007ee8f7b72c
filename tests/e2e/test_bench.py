"""`guichet bench` end to end on the demo corpus with the real models (a few questions: a smoke run)."""

import json
import subprocess
import sys

import pytest

from bot.settings import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_benchmark_measures_both_configurations_side_by_side(tmp_path):
    command = [sys.executable, "-m", "guichet.cli", "bench", "--limit", "4", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["guichet"]["questions"] == report["naive"]["questions"] == 4
    assert report["ingestion"]["unchanged_rebuild_embedded"] == 0 and report["ingestion"]["chunks_per_s"] > 0
    assert report["naive"]["prompt_tokens_mean"] > report["guichet"]["prompt_tokens_mean"] > 0
    assert report["validated_answers"]["validated"] >= 1 and report["validated_answers"]["hit_p50_ms"] < 1000
    assert report["decoding"]["decode_ms_per_token_schema"] and report["peak_memory_mb"] > 500
    assert "| prompt tokens (mean) |" in (tmp_path / "bench.md").read_text()
