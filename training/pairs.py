"""The verifier's training pairs, built from the generated questions and the indexes; split by document.

*answers* pairs (question, sentence as the verifier reads it, 1 if the sentence answers):
- the sentence a question was written about, when the embedder agrees (it ranks that sentence among the first two
  of its passage: the small model's questions are noisy);
- hard negatives: the passage's other sentences, the nearest sentences of other documents retrieved for the
  question (near-duplicates of the positive dropped), and the sentence read against the question changed to
  another case ("majeur" → "mineur") when the sentence names that case;
- the model's "unanswered" question against the passage's sentences, when the embedder finds it no closer to
  them than the answered question is to its sentence.

*supports* pairs (statement, sentence, entailed / contradicted / not stated): the model's one-sentence answer,
when its figures and words are the sentence's; the same answer negated, with another figure of the passage, another
case or another authority; another sentence's answer.

A pair belongs to the train or the valid side by its documents (no document on both sides); a pair across the two
sides is dropped. Generated questions within ``LEAK_COSINE`` of an evaluation question are dropped first.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.answer.candidates import Candidate, candidates
from bot.answer.textmatch import figures
from bot.answer.turn import Passage
from bot.engines.embedder import Embedder
from bot.engines.index import Index
from bot.engines.verifier import document_text
from bot.language.words import content_terms
from training.perturbations import negated, other_authority, other_case, other_figure
from training.registers import in_some_register

log = logging.getLogger(__name__)

LEAK_COSINE = 0.92  # a generated question this close to an evaluation question is not trained on
VALID_SHARE = 0.2  # documents on the valid side
ENTAILED, CONTRADICTED, NOT_STATED = 0, 1, 2
EXAMPLE_WORDS = {"tondeuse"}  # the question prompt's made-up example: a reply that copies it is dropped
SAME_PASSAGE_NEGATIVES = 3
OTHER_DOCUMENT_NEGATIVES = 2
NEAR_DUPLICATE = 0.6  # word overlap (Jaccard) above which another document's sentence says the same thing
COPIED = 0.8  # a "question" sharing this much of its words with its sentence restates it: no resident asks so
# "Pourquoi …", "la raison pour laquelle …": the small model asks why of rules that state no reason.
WHY = re.compile(r"^\W*pourquoi\b|\braison pour laquelle\b|\bdans quel but\b", re.I)
MAX_SITUATION_CHARS = 90  # a row question names the row's other cells: short ones only


@dataclass(frozen=True)
class Pair:
    """One training example."""

    task: str  # "answers" or "supports"
    a: str  # the question or the statement
    b: str  # the sentence as the verifier reads it (Candidate.reading)
    label: int  # answers: 1/0; supports: ENTAILED, CONTRADICTED, NOT_STATED
    kind: str  # how it was made (the report breaks results down by it)
    sources: tuple[str, ...]  # the documents it draws on
    register: str = "standard"
    split: str = ""


def side(source: str, valid_share: float = VALID_SHARE) -> str:
    """The side a document is on, from its path's hash: the same on every run."""
    h = int(hashlib.sha256(source.encode()).hexdigest()[:8], 16)
    return "valid" if (h % 1000) / 1000 < valid_share else "train"


def jaccard(a: str, b: str) -> float:
    x, y = content_terms(a), content_terms(b)
    return len(x & y) / len(x | y) if x | y else 0.0


class Vectors:
    """Embeddings computed once per text (questions with the query prompt, readings as documents)."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.queries: dict[str, np.ndarray] = {}
        self.documents: dict[str, np.ndarray] = {}

    def query(self, texts: Iterable[str]) -> np.ndarray:
        texts = list(texts)
        todo = [t for t in dict.fromkeys(texts) if t not in self.queries]
        if todo:
            self.queries.update(zip(todo, self.embedder.embed_queries(todo), strict=True))
        return np.stack([self.queries[t] for t in texts]) if texts else np.zeros((0, self.embedder.dimension))

    def document(self, candidates_: list[Candidate]) -> np.ndarray:
        return self.readings([c.reading for c in candidates_])

    def readings(self, texts: Iterable[str]) -> np.ndarray:
        """Sentences as the verifier reads them, embedded as documents (``document_text``)."""
        texts = list(texts)
        todo = [t for t in dict.fromkeys(texts) if t not in self.documents]
        if todo:
            vectors = self.embedder.embed_documents([document_text(t) for t in todo])
            self.documents.update(zip(todo, vectors, strict=True))
        return np.stack([self.documents[t] for t in texts]) if texts else np.zeros((0, self.embedder.dimension))


def evaluation_questions(folders: list[Path]) -> list[str]:
    """Every question of the evaluation sets (JSON Lines) under ``folders``: never trained on."""
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    case = json.loads(line)
                    found += [case.get("question", ""), *case.get("history", []), case.get("paraphrase", "")]
    return [q for q in found if q]


def without_leaks(pairs: list[Pair], vectors: Vectors, held_out: list[str]) -> tuple[list[Pair], int]:
    """The pairs whose question, in the form it is trained on (a register changes words), stands at cosine
    ``LEAK_COSINE`` or more from no evaluation question; and how many questions were dropped. Run on the pairs
    before every training, so that an evaluation set written after the pairs were built is held out too."""
    asked = sorted({p.a for p in pairs if p.task == "answers"})
    if not asked or not held_out:
        return pairs, 0
    closest = (vectors.query(asked) @ vectors.query(held_out).T).max(axis=1)
    leaked = {q for q, c in zip(asked, closest, strict=True) if c >= LEAK_COSINE}
    return [p for p in pairs if not (p.task == "answers" and p.a in leaked)], len(leaked)


class PairBuilder:
    """Builds the pairs of one generated record at a time (see the module docstring)."""

    def __init__(self, indexes: dict[str, Index], vectors: Vectors, held_out: list[str]):
        self.indexes, self.vectors = indexes, vectors
        self.held_out = vectors.query(held_out) if held_out else None
        self.dropped_as_leaks = 0

    def leaks(self, question: str) -> bool:
        if self.held_out is None:
            return False
        close = float(np.max(self.held_out @ self.vectors.query([question])[0])) >= LEAK_COSINE
        self.dropped_as_leaks += close
        return close

    def _passage(self, record: dict[str, Any]) -> tuple[Passage, list[Candidate], Candidate | None]:
        index = self.indexes[record["corpus"]]
        chunk = next(c for c in index.chunks if c.id == record["chunk_id"])
        passage = Passage.from_chunk(chunk, "S1")
        found = candidates([passage])
        target = next((c for c in found if c.unit.position == record["position"]), None)
        return passage, found, target

    def _other_documents(self, record: dict[str, Any], question: str, target: Candidate) -> list[Candidate]:
        """Sentences of the other documents retrieved for the question, those sharing the most words with it first
        (hard negatives: the same words, another case), near-duplicates of the target dropped. Ranked by words,
        not vectors: embedding every retrieved sentence cost ten times the rest of the build."""
        index = self.indexes[record["corpus"]]
        vector = self.vectors.query([question])[0]
        hits = index.search(vector, question, k=6, pool=30, lexical_weight=0.01)
        pool = []
        for n, hit in enumerate(h for h in hits if h.chunk.source != record["source"]):
            pool += candidates([Passage.from_chunk(hit.chunk, f"S{n + 1}")])
        pool = [c for c in pool if jaccard(c.text, target.text) < NEAR_DUPLICATE and not _same_facts(c, target)]
        asked = content_terms(question)
        pool.sort(key=lambda c: -len(asked & content_terms(c.reading)))
        return pool[:OTHER_DOCUMENT_NEGATIVES]

    def pairs(self, record: dict[str, Any]) -> list[Pair]:
        _, found, target = self._passage(record)
        if target is None or len(found) < 2:
            return []
        source = record["source"]
        readings = self.vectors.document(found)
        whole = {c.unit.position for c in found if c.text == target.text or c.lead_in == target.text}
        out: list[Pair] = []
        kept_scores = []
        for question in record["questions"]:
            if content_terms(question) & EXAMPLE_WORDS or WHY.search(question) or self.leaks(question):
                continue
            if jaccard(question, target.text) >= COPIED:
                continue
            scores = readings @ self.vectors.query([question])[0]
            ranked = [found[i] for i in np.argsort(-scores)]
            if target not in ranked[:2]:
                continue  # the embedder does not see this question as being about its sentence
            kept_scores.append(float(scores[found.index(target)]))
            asked, register = in_some_register(question)
            out.append(Pair("answers", asked, target.reading, 1, "positive", (source,), register))
            others = [c for c in ranked if c.unit.position not in whole and c.text != target.text]
            out += [
                Pair("answers", asked, c.reading, 0, "same_passage", (source,), register)
                for c in others[:SAME_PASSAGE_NEGATIVES]
            ]
            out += [
                Pair("answers", asked, c.reading, 0, "other_document", (source, c.source), register)
                for c in self._other_documents(record, question, target)
            ]
            changed = other_case(question)
            if changed and other_case(target.reading) and changed != question:
                out.append(Pair("answers", changed, target.reading, 0, "other_case_question", (source,)))
        unanswered = record.get("unanswered", "")
        if unanswered and kept_scores and not self.leaks(unanswered):
            scores = readings @ self.vectors.query([unanswered])[0]
            if float(scores.max()) < min(kept_scores):
                asked, register = in_some_register(unanswered)
                out += [
                    Pair("answers", asked, found[i].reading, 0, "unanswered", (source,), register)
                    for i in np.argsort(-scores)[:SAME_PASSAGE_NEGATIVES]
                ]
        out += self._supports(record, found, target)
        return out

    def _supports(self, record: dict[str, Any], found: list[Candidate], target: Candidate) -> list[Pair]:
        answer, source = record.get("answer", ""), (record["source"],)
        if not answer or not _states_only(answer, target):
            return []
        out = [Pair("supports", answer, target.reading, ENTAILED, "entailed", source)]
        pool = sorted({f for c in found for f in figures(c.text) if f.replace(".", "").isdigit()})
        for kind, changed in (
            ("negated", negated(answer)),
            ("other_figure", other_figure(answer, pool)),
            ("other_case", other_case(answer)),
            ("other_authority", other_authority(answer)),
        ):
            if changed and changed != answer:
                out.append(Pair("supports", changed, target.reading, CONTRADICTED, kind, source))
        unrelated = [c for c in found if c.text != target.text and jaccard(c.text, target.text) < 0.3]
        if unrelated:
            out.append(Pair("supports", answer, unrelated[0].reading, NOT_STATED, "not_stated", source))
        return out


def row_pairs(indexes: dict[str, Index], held_out: PairBuilder | None = None) -> list[Pair]:
    """Questions asked of the tables' rows by the form of the rows, no model needed: a row "Situation : Majeur ;
    Prix : 86 €" answers "Prix pour Majeur ?", and the other rows of its table (the other cases) do not. The class
    of failure they teach is the wrong row."""
    out: list[Pair] = []
    for index in indexes.values():
        seen: set[str] = set()
        for chunk in index.chunks:
            rows = [c for c in candidates([Passage.from_chunk(chunk, "S1")]) if c.unit.is_row]
            for row in rows if len(rows) >= 2 else []:
                cells = [cell.split(" : ", 1) for cell in row.text.split(" ; ")]
                if row.text in seen or len(cells) < 2 or any(len(cell) != 2 for cell in cells):
                    continue
                seen.add(row.text)
                situation = ", ".join(value.strip() for _, value in cells[:-1])
                if len(situation) > MAX_SITUATION_CHARS:
                    continue
                question = f"{cells[-1][0].strip()} pour {situation} ?"
                if held_out is not None and held_out.leaks(question):
                    continue
                asked, register = in_some_register(question)
                source = (row.source,)
                out.append(Pair("answers", asked, row.reading, 1, "row", source, register))
                others = [o for o in rows if o.text != row.text][:SAME_PASSAGE_NEGATIVES]
                out += [Pair("answers", asked, o.reading, 0, "other_row", source, register) for o in others]
    return out


def _same_facts(a: Candidate, b: Candidate) -> bool:
    """Whether two sentences state the same figures (a fee repeated in a sibling fiche)."""
    fa, fb = figures(a.text), figures(b.text)
    return bool(fa) and fa == fb


def _states_only(answer: str, target: Candidate) -> bool:
    """Whether the model's answer says nothing but what its sentence says (its figures, most of its words)."""
    if figures(answer) - figures(target.reading):
        return False
    said = content_terms(answer)
    return bool(said) and len(said - content_terms(target.reading)) <= max(1, len(said) // 4)


def with_sides(pairs: list[Pair]) -> list[Pair]:
    """Each pair on the side of its documents; a pair whose documents are on both sides is dropped."""
    kept = []
    for pair in pairs:
        sides = {side(s) for s in pair.sources}
        if len(sides) == 1:
            kept.append(Pair(**{**asdict(pair), "split": sides.pop()}))
    return kept


def write_pairs(pairs: list[Pair], out: Path) -> None:
    """JSON Lines, gzipped when the name ends in .gz (the tracked copy), written reproducibly (no timestamp)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(asdict(pair), ensure_ascii=False) + "\n" for pair in pairs).encode("utf-8")
    out.write_bytes(gzip.compress(text, mtime=0) if out.suffix == ".gz" else text)


def read_pairs(path: Path) -> list[Pair]:
    data = path.read_bytes()
    text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [Pair(**{**r, "sources": tuple(r["sources"])}) for r in rows]
