"""Staff mark evaluated answers as validated: they are then served as they are while the corpus is unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from bot.answer.outcomes import ANSWERS
from bot.answer.validated_answers import ValidatedAnswers, answer_key
from bot.errors import GuichetError
from bot.settings import REPO_ROOT
from eval.dataset import load_cases
from eval.runner import load_results

TEST_SPLIT = REPO_ROOT / "eval" / "datasets" / "test2"


def held_out_questions(test_split: Path = TEST_SPLIT) -> set[str]:
    """The questions of the held-out test split, as validated answers are keyed: never validated, so the test
    split keeps measuring the pipeline."""
    return {answer_key(c.question) for path in sorted(test_split.glob("*.jsonl")) for c in load_cases(path)}


def validate_run(run_dir: Path, answers: ValidatedAnswers, case_ids: list[str], all_passed: bool, by: str) -> list[str]:
    """Add the chosen answered cases of a finished run to ``answers``; returns the ids actually added."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        results = load_results(run_dir)
    except FileNotFoundError as exc:
        raise GuichetError(
            f"{exc.filename} not found: validate a finished run ('guichet eval run --out DIR')."
        ) from None
    corpus_hash = summary["run"]["index"].get("corpus_hash")
    if not corpus_hash:
        raise GuichetError(f"{run_dir} was run over HTTP or without an index manifest: run it in process to validate.")
    by_id = {r["id"]: r for r in results}
    unknown = [i for i in case_ids if i not in by_id]
    if unknown:
        raise GuichetError(f"No case {', '.join(unknown)} in {run_dir}.")
    passed_answers = [r["id"] for r in results if r["passed"] and r["outcome"] in ANSWERS and r["citations"]]
    chosen = case_ids or (passed_answers if all_passed else [])
    held_out = held_out_questions()
    added = []
    for case_id in chosen:
        result = by_id[case_id]
        if result["outcome"] not in ANSWERS or not result["citations"]:
            raise GuichetError(f"Case {case_id} was not answered ({result['outcome']}): only answers are validated.")
        if answer_key(result["question"]) in held_out:
            if case_ids:  # asked by name: say why; --all-passed skips them quietly
                raise GuichetError(f"Case {case_id} is a question of the held-out test split: it is never validated.")
            continue
        if answers.add(result["question"], corpus_hash, result["answer"], result["citations"], by):
            added.append(case_id)
    return added
