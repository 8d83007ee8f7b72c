"""Evaluation cases: JSONL (one case per line) or CSV, with the matching rules staff rely on.

A case: ``id``, ``question``, ``kind`` ("answer" or "refuse"), ``category``, ``must_include`` (AND of
strings or OR-lists), optional ``must_not_include`` and ``source``. Unknown fields are kept.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import GuichetError
from bot.textmatch import normalize

KINDS = ("answer", "refuse")


class DatasetError(GuichetError):
    """A dataset line is malformed; the message names the file and line."""


@dataclass
class Case:
    """One evaluation question and what a right reply must (not) contain."""

    id: str
    question: str
    kind: str
    category: str
    must_include: list = field(default_factory=list)
    must_not_include: list = field(default_factory=list)
    source: str = ""
    outcome: str = ""  # optional: the exact outcome expected (e.g. handoff_emergency)
    extra: dict = field(default_factory=dict)


def _match_form(text: str) -> str:
    """Matching form: normalised text with decimal commas as dots (so 3,69 and 3.69 match)."""
    return re.sub(r"(?<=\d),(?=\d)", ".", normalize(text))


def contains(reply: str, expected: str | list[str]) -> bool:
    """True if ``reply`` contains ``expected`` (or, for a list, any one of its strings).

    >>> contains("Le repas coûte 3,69\u00a0€.", [["3.69 €"], "x"][0])
    True
    """
    options = expected if isinstance(expected, list) else [expected]
    haystack = _match_form(reply)
    return any(_match_form(option) in haystack for option in options)


def _case(raw: dict, where: str) -> Case:
    if not isinstance(raw, dict):
        raise DatasetError(f"{where}: a case must be a JSON object.")
    missing = [k for k in ("id", "question", "kind") if not raw.get(k)]
    if missing:
        raise DatasetError(f"{where}: missing field(s) {', '.join(missing)}.")
    if raw["kind"] not in KINDS:
        raise DatasetError(f"{where}: kind must be 'answer' or 'refuse', not {raw['kind']!r}.")
    must = raw.get("must_include") or []
    if not isinstance(must, list) or not all(isinstance(m, str | list) for m in must):
        raise DatasetError(f"{where}: must_include must be a list of strings or lists of strings.")
    known = {"id", "question", "kind", "category", "must_include", "must_not_include", "source", "outcome"}
    return Case(
        id=str(raw["id"]),
        question=str(raw["question"]),
        kind=raw["kind"],
        category=str(raw.get("category") or "sans catégorie"),
        must_include=must,
        must_not_include=list(raw.get("must_not_include") or []),
        source=str(raw.get("source") or ""),
        outcome=str(raw.get("outcome") or ""),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def load_cases(path: Path) -> list[Case]:
    """Read a ``.jsonl`` or ``.csv`` dataset; every problem is reported with its line number."""
    if not path.exists():
        raise DatasetError(f"Dataset {path} not found.")
    cases: list[Case] = []
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for n, row in enumerate(csv.DictReader(fh), 2):
                row = {k: v for k, v in row.items() if v not in ("", None)}  # an empty cell is an absent field
                for key in ("must_include", "must_not_include"):
                    try:
                        row[key] = json.loads(row[key]) if row.get(key) else []
                    except json.JSONDecodeError:
                        raise DatasetError(f'{path}:{n}: {key} must be a JSON list, e.g. ["25 €"].') from None
                cases.append(_case(row, f"{path}:{n}"))
    else:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("//"):
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{n}: not valid JSON ({exc.msg}).") from None
            cases.append(_case(raw, f"{path}:{n}"))
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DatasetError(f"{path}: duplicate id(s) {', '.join(duplicates)}.")
    return cases


def save_cases(cases: list[Case], path: Path) -> None:
    """Write cases as ``.jsonl`` or ``.csv`` (lists as JSON in their cell), unknown fields included."""
    rows = []
    for case in cases:
        row = {
            "id": case.id,
            "question": case.question,
            "kind": case.kind,
            "category": case.category,
            "must_include": case.must_include,
            "must_not_include": case.must_not_include,
            "source": case.source,
            **({"outcome": case.outcome} if case.outcome else {}),
        }
        rows.append(row | case.extra)
    if path.suffix.lower() == ".csv":
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {k: json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v for k, v in row.items()}
                )
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
