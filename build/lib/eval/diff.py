"""Compare two evaluation runs case by case: what regressed, what got fixed, how the headline moved."""

from __future__ import annotations

import json
from pathlib import Path

from eval.runner import load_results

HEADLINE = ("handled_right", "answer_accuracy", "refusal_accuracy", "invented_facts", "latency_p50_s")


def _results(out_dir: Path) -> dict[str, dict]:
    return {r["id"]: r for r in load_results(out_dir)}


def diff(old_dir: Path, new_dir: Path) -> dict:
    """``{"regressions": [...], "fixes": [...], "metrics": {name: (old, new)}}`` over the cases both ran."""
    old, new = _results(old_dir), _results(new_dir)
    common = [i for i in new if i in old]
    old_summary = json.loads((old_dir / "summary.json").read_text(encoding="utf-8"))
    new_summary = json.loads((new_dir / "summary.json").read_text(encoding="utf-8"))
    return {
        "regressions": [
            new[i] | {"before": old[i]["answer"]} for i in common if old[i]["passed"] and not new[i]["passed"]
        ],
        "fixes": [new[i] for i in common if not old[i]["passed"] and new[i]["passed"]],
        "metrics": {k: (old_summary.get(k), new_summary.get(k)) for k in HEADLINE},
        "only_old": sorted(set(old) - set(new)),
        "only_new": sorted(set(new) - set(old)),
    }
