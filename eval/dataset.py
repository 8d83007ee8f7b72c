"""Evaluation cases: JSONL (one case per line) or CSV, with the matching rules staff rely on.

A case: ``id``, ``question``, ``kind`` ("answer" or "refuse"), ``category``, ``must_include`` (AND of
strings or OR-lists), optional ``must_not_include`` and ``source``; a refuse case names the ``outcome`` (or list
of outcomes) it accepts. Optional: ``polarity`` ("oui"/"non", the answer a yes/no question must not contradict),
``history`` (earlier questions of the same conversation, asked first), ``ordinary`` (an ordinary question holding a
word a keyword rule would trip on) and ``style``. Unknown fields are kept.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from bot.answer.outcomes import Outcome
from bot.errors import GuichetError
from bot.text import normalize

KINDS = ("answer", "refuse")
OUTCOMES = tuple(o.value for o in Outcome)
OUTCOME_EXAMPLE = Outcome.UNANSWERABLE_NO_SOURCES.value


class DatasetError(GuichetError):
    """A dataset line is malformed; the message (in French: staff read it in the console) names the file and line."""


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
    outcomes: list[str] = field(default_factory=list)  # refuse cases: the outcomes that count as right
    polarity: str = ""  # "oui" or "non": a reply opening with the other word is wrong
    history: list[str] = field(default_factory=list)  # earlier questions of the conversation, asked first
    ordinary: bool = False  # an ordinary question with a word a keyword rule would trip on
    extra: dict = field(default_factory=dict)


# Variants a reply may use for the same figure or ordinal, folded to one form before matching.
_VARIANTS = (
    (re.compile(r"(?<=\d)[\u00a0\u202f ](?=\d{3}(?!\d))"), ""),  # 1 000 -> 1000
    (re.compile(r"(?<=\d),(?=\d)"), "."),  # 3,69 -> 3.69
    (re.compile(r"(?<=\d)\s*(?:€|euros?\b)"), " €"),  # 86€, 86 euros -> 86 €
    (re.compile(r"(?<=\d)\s*(?:ᵉʳ|er)\b"), "er"),  # 1 er, 1ᵉʳ -> 1er
    (re.compile(r"(?<=\d)\s*(?:ᵉ|e|ème|eme)\b"), "e"),  # 6 e, 6ème -> 6e
    (re.compile(r"(?<=\d)\s*h\s*(?=\d{2}\b)"), " h "),  # 18h30 -> 18 h 30
    (re.compile(r"(?<=\d)\s*h\b"), " h"),  # 9h -> 9 h
    (re.compile(r"\bm(?:2|²)"), "m²"),
)


def matching_form(text: str) -> str:
    """Normalised text with figure variants folded: "3,69 €" and "3.69€", "9h" and "9 h" read the same.

    >>> matching_form("Le repas coûte 3,69\u00a0euros, de 9h à 18h30, 1 000 places.")
    'le repas coûte 3.69 €, de 9 h à 18 h 30, 1000 places.'
    """
    text = normalize(text)
    for pattern, replacement in _VARIANTS:
        text = pattern.sub(replacement, text)
    return text


def contains(reply: str, expected: str | list[str]) -> bool:
    """True if ``reply`` contains ``expected`` (or, for a list, any one of its strings) as whole words and
    whole numbers: "5 jours" is not found in "15 jours", nor "non" in "sinon".

    >>> contains("Le repas coûte 3,69\u00a0€.", ["3.69 €", "x"])
    True
    >>> contains("Comptez 15 jours.", "5 jours"), contains("Sinon, appelez.", "non")
    (False, False)
    """
    options = expected if isinstance(expected, list) else [expected]
    haystack = matching_form(reply)
    return any(
        re.search(rf"(?<![\w.,]){re.escape(matching_form(option))}(?![\w]|[.,]\d)", haystack) for option in options
    )


def _case(raw: dict, where: str) -> Case:
    if not isinstance(raw, dict):
        raise DatasetError(f"{where}: un cas doit être un objet JSON.")
    missing = [k for k in ("id", "question", "kind") if not raw.get(k)]
    if missing:
        raise DatasetError(f"{where}: champ(s) manquant(s) : {', '.join(missing)}.")
    if raw["kind"] not in KINDS:
        raise DatasetError(f"{where}: kind doit valoir 'answer' ou 'refuse', pas {raw['kind']!r}.")
    must = raw.get("must_include") or []
    if not isinstance(must, list) or not all(isinstance(m, str | list) for m in must):
        raise DatasetError(f"{where}: must_include doit être une liste de textes ou de listes de textes.")
    outcomes = raw.get("outcome") or []
    outcomes = [outcomes] if isinstance(outcomes, str) else outcomes
    if raw["kind"] == "refuse" and not outcomes:
        raise DatasetError(
            f'{where}: un cas à refuser doit nommer les issues acceptées, par ex. "outcome": ["{OUTCOME_EXAMPLE}"].'
        )
    unknown = [o for o in outcomes if o not in OUTCOMES]
    if unknown:
        raise DatasetError(
            f"{where}: issue(s) inconnue(s) {', '.join(map(str, unknown))} ; connues : {', '.join(OUTCOMES)}."
        )
    if raw.get("polarity", "") not in ("", "oui", "non"):
        raise DatasetError(f"{where}: polarity doit valoir 'oui' ou 'non', pas {raw['polarity']!r}.")
    history = raw.get("history") or []
    if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
        raise DatasetError(f"{where}: history doit être une liste des questions précédentes.")
    known = {
        "id",
        "question",
        "kind",
        "category",
        "must_include",
        "must_not_include",
        "source",
        "outcome",
        "polarity",
        "history",
        "ordinary",
    }
    return Case(
        id=str(raw["id"]),
        question=str(raw["question"]),
        kind=raw["kind"],
        category=str(raw.get("category") or "sans catégorie"),
        must_include=must,
        must_not_include=list(raw.get("must_not_include") or []),
        source=str(raw.get("source") or ""),
        outcomes=list(outcomes),
        polarity=str(raw.get("polarity") or ""),
        history=list(history),
        ordinary=bool(raw.get("ordinary")),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def load_cases(path: Path) -> list[Case]:
    """Read a ``.jsonl`` or ``.csv`` dataset; a bad file is a ``DatasetError`` naming every bad line."""
    cases, errors = read_cases(path)
    if errors:
        raise DatasetError("\n".join(errors))
    return cases


def read_cases(path: Path) -> tuple[list[Case], list[str]]:
    """The valid cases of a ``.jsonl`` or ``.csv`` dataset, and one message per bad line (``file:line: why``)."""
    if not path.exists():
        raise DatasetError(f"Jeu de questions {path} introuvable.")
    cases: list[Case] = []
    errors: list[str] = []
    for where, raw in _rows(path, errors):
        try:
            cases.append(_case(raw, where))
        except DatasetError as exc:
            errors.append(str(exc))
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        errors.append(f"{path}: identifiant(s) en double : {', '.join(duplicates)}.")
    return cases, errors


def _rows(path: Path, errors: list[str]):
    """``(file:line, raw case)`` for each row that parses; a row that does not is an entry of ``errors``."""
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for n, row in enumerate(csv.DictReader(fh), 2):
                row = {k: v for k, v in row.items() if v not in ("", None)}  # an empty cell is an absent field
                try:
                    for key in ("must_include", "must_not_include", "history"):
                        try:
                            row[key] = json.loads(row[key]) if row.get(key) else []
                        except json.JSONDecodeError:
                            raise DatasetError(
                                f'{path}:{n}: {key} doit être une liste JSON, par ex. ["25 €"].'
                            ) from None
                    if str(row.get("outcome", "")).startswith("["):  # several accepted outcomes, as a JSON list
                        try:
                            row["outcome"] = json.loads(row["outcome"])
                        except json.JSONDecodeError:
                            raise DatasetError(
                                f'{path}:{n}: outcome doit être une liste JSON, par ex. ["{OUTCOME_EXAMPLE}"].'
                            ) from None
                except DatasetError as exc:
                    errors.append(str(exc))
                    continue
                row["ordinary"] = str(row.get("ordinary", "")).lower() in ("true", "1", "oui")
                yield f"{path}:{n}", row
        return
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            yield f"{path}:{n}", json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{path}:{n}: ligne JSON invalide ({exc.msg}).")


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
            **({"outcome": case.outcomes} if case.outcomes else {}),
            **({"polarity": case.polarity} if case.polarity else {}),
            **({"history": case.history} if case.history else {}),
            **({"ordinary": True} if case.ordinary else {}),
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
