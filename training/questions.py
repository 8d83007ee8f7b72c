"""Questions a resident would ask, written by the local model from sentences of the documents.

For each sampled sentence or table row of an index, the model reads it (with its document's title, headings and
lead-in) and writes two questions the sentence answers (direct, then in everyday words), a one-sentence answer,
and one question on the same topic that the sentence does not answer. Nothing here comes from an evaluation
question: the sentences are sampled from the documents, and ``training.pairs`` drops any generated question too
close in meaning to an evaluation one.

The output is JSON Lines, one sentence per line, appended as it is written: an interrupted run resumes where it
stopped (``guichet models verifier-data``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bot.answer.candidates import Candidate, candidates
from bot.answer.prompt import Prompt
from bot.answer.turn import Passage
from bot.engines.chunk import Chunk
from bot.engines.index import Index
from bot.engines.llm import ChatModel
from bot.errors import ModelError
from bot.language.words import content_terms

log = logging.getLogger(__name__)

QUESTIONS_PROMPT = Path(__file__).resolve().parent.parent / "prompts" / "verifier-questions.fr.yaml"
SCHEMA = {
    "type": "object",
    "properties": {
        "questions": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
        "reponse": {"type": "string"},
        "sans_reponse": {"type": "string"},
    },
    "required": ["questions", "reponse", "sans_reponse"],
}
MIN_CHARS = 25  # "Gratuit." alone is read with its lead-in, but says too little to write three questions from
MIN_TERMS = 3
MAX_TOKENS = 200
PASSAGES_PER_SENTENCE = 8  # a long document (a tariff list, a long fiche) gets one sentence per eight passages


@dataclass(frozen=True)
class Target:
    """A sentence or table row the model writes questions about, with the passage it is read in."""

    id: str  # chunk id @ position: stable across runs on the same index
    corpus: str
    source: str
    chunk_id: str
    position: int
    sentence: str
    reading: str
    title: str
    headings: tuple[str, ...]
    passage: str


def statements(passage: Passage) -> list[Candidate]:
    """The passage's sentences and rows that say enough to be asked about."""
    return [
        c
        for c in candidates([passage])
        if len(c.reading) >= MIN_CHARS + len(c.where) and len(content_terms(c.text + " " + c.lead_in)) >= MIN_TERMS
    ]


def _seeded(text: str, seed: int) -> random.Random:
    return random.Random(int(hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()[:12], 16))


def targets(index: Index, corpus: str, per_document: int, seed: int = 0, most: int = 12) -> list[Target]:
    """Up to ``per_document`` sentences of each document of ``index`` (one per ``PASSAGES_PER_SENTENCE`` passages
    for a long one, at most ``most``), sampled reproducibly and spread over its passages (one per passage first)."""
    by_source: dict[str, list[Chunk]] = defaultdict(list)
    for chunk in index.chunks:
        by_source[chunk.source].append(chunk)
    found: list[Target] = []
    for source in sorted(s for s in by_source if not Path(s).name.upper().startswith("README")):
        rng = _seeded(source, seed)
        pools = []
        for chunk in by_source[source]:
            passage = Passage.from_chunk(chunk, "S1")
            pool = statements(passage)
            rng.shuffle(pool)
            pools.append([(passage, c) for c in pool])
        rng.shuffle(pools)
        wanted = min(most, max(per_document, len(pools) // PASSAGES_PER_SENTENCE))
        chosen, seen = [], set()
        while len(chosen) < wanted and any(pools):
            for pool in pools:
                while pool and len(chosen) < wanted:
                    passage, candidate = pool.pop()
                    if candidate.text in seen:  # chunks overlap: a sentence can be in two of them
                        continue
                    seen.add(candidate.text)
                    chosen.append((passage, candidate))
                    break
        for passage, c in chosen:
            found.append(
                Target(
                    id=f"{c.chunk_id}@{c.unit.position}",
                    corpus=corpus,
                    source=source,
                    chunk_id=c.chunk_id,
                    position=c.unit.position,
                    sentence=c.text,
                    reading=c.reading,
                    title=passage.title,
                    headings=tuple(passage.headings),
                    passage=passage.text,
                )
            )
    return found


def in_rounds(todo: list[Target]) -> list[Target]:
    """The targets reordered so that a run stopped early has the same share of every document's quota: each
    sentence is placed by its rank within its document over the document's count (a town page with twelve
    sentences gets one in every twelfth of the run, a fiche with two one in each half)."""
    count: dict[str, int] = defaultdict(int)
    for target in todo:
        count[target.source] += 1
    rank: dict[str, int] = defaultdict(int)
    keyed = []
    for target in todo:
        place = (rank[target.source] + 0.5) / count[target.source]
        keyed.append((place, hashlib.sha256(target.id.encode()).hexdigest(), target))
        rank[target.source] += 1
    return [t for _, _, t in sorted(keyed, key=lambda k: k[:2])]


def ask(model: ChatModel, prompt: Prompt, target: Target) -> dict[str, Any] | None:
    """The model's questions about one sentence, or None when its reply is unusable. The small model's questions
    are noisy (a second question about another sentence, an "unanswered" one the passage does answer):
    ``training.pairs`` keeps only those the embedder finds consistent with their sentence."""
    body = target.reading.split(" | ", 1)[-1]  # the sentence after its lead-in, without the repeated title
    messages = prompt.messages(title=target.title, headings=list(target.headings), sentence=body)
    try:
        reply = json.loads(model.complete(messages, SCHEMA, MAX_TOKENS).text)
    except ModelError as exc:  # a server hiccup loses one sentence, not the run
        log.warning("no questions for %s: %s", target.id, exc)
        return None
    except ValueError:
        return None
    try:
        questions = [str(q).strip() for q in reply["questions"]]
        answer, unanswered = str(reply["reponse"]).strip(), str(reply["sans_reponse"]).strip()
    except (KeyError, TypeError, AttributeError):
        return None
    questions = [q for q in dict.fromkeys(questions) if len(q) >= 10]
    if not questions:
        return None
    return {
        **asdict(target),
        "questions": questions,
        "answer": answer,
        "unanswered": unanswered if len(unanswered) >= 10 and unanswered not in questions else "",
        "prompt_version": prompt.version,
        "model": model.name,
    }


def done_ids(path: Path) -> set[str]:
    """Targets already written to ``path`` (a resumed run skips them)."""
    if not path.exists():
        return set()
    return {json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def write_questions(model: ChatModel, todo: list[Target], out: Path, parallel: int = 1) -> Iterator[int]:
    """Ask the model about every target not yet in ``out``, appending each reply; yields the count written so far."""
    prompt = Prompt.load(QUESTIONS_PROMPT)
    done = done_ids(out)
    todo = [t for t in todo if t.id not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(out, "a", encoding="utf-8") as fh, ThreadPoolExecutor(max_workers=parallel) as pool:
        for record in pool.map(lambda t: ask(model, prompt, t), todo):
            if record is None:
                continue
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            written += 1
            yield written
