"""The on-disk index: generations written atomically, read back as chunks + FAISS + BM25.

Layout of an index directory::

    CURRENT              name of the live generation (replaced atomically at the end of a build)
    gen-<stamp>/         manifest.json, chunks.jsonl, dense.faiss, report.json

A build writes a whole new generation, then swaps ``CURRENT``: a build killed midway leaves the previous
generation live. The last few generations are kept, so a bad corpus update can be undone (``switch_to``).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import faiss
import numpy as np

from bot.engines.chunk import Chunk
from bot.errors import IndexError_
from bot.language.words import tokenize

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
DENSE = "dense.faiss"
REPORT = "report.json"


def live_generation(index_dir: Path) -> Path | None:
    """The directory of the live generation, or None if nothing was ever built there."""
    pointer = index_dir / CURRENT
    if not pointer.exists():
        return None
    generation = index_dir / pointer.read_text(encoding="utf-8").strip()
    return generation if (generation / MANIFEST).exists() else None


def generations(index_dir: Path) -> list[dict[str, Any]]:
    """The complete generations, oldest first: name, build date, corpus hash, counts, and which one is live."""
    live = live_generation(index_dir)
    found = []
    for path in sorted(index_dir.glob("gen-*")):
        try:
            manifest = read_manifest(path)
        except IndexError_:
            continue  # incomplete or damaged: not a generation one can go back to
        found.append(
            {
                "name": path.name,
                "built_at": manifest.get("built_at", ""),
                "corpus_hash": manifest.get("corpus_hash", ""),
                "documents": manifest.get("document_count"),
                "passages": manifest.get("chunk_count"),
                "live": live is not None and path.name == live.name,
            }
        )
    return found


def switch_to(index_dir: Path, name: str) -> None:
    """Make generation ``name`` live: the pointer is written, flushed to disk, then renamed over ``CURRENT``."""
    pointer = index_dir / f".{CURRENT}.tmp"
    with open(pointer, "w", encoding="utf-8") as out:
        out.write(name)
        out.flush()
        os.fsync(out.fileno())
    os.replace(pointer, index_dir / CURRENT)  # the atomic switch
    fsync(index_dir)


def fsync(path: Path) -> None:
    """Flush a file's content, or a directory's entries (a rename is durable only once its directory is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Hit:
    """One retrieved chunk with its scores (dense cosine, raw BM25, fused rank score)."""

    chunk: Chunk
    dense: float
    lexical: float
    fused: float


PASSAGE_BREAK = "\f"  # between a document's passages in ``Index.document_text``


class Index:
    """Read-only view of the live generation; safe to share between requests (and processes via mmap).

    >>> index = Index.open(Path("var/index/demo"))  # doctest: +SKIP
    >>> index.search(query_vector, "horaires de la mairie", k=3)  # doctest: +SKIP
    """

    def __init__(self, generation: Path):
        self.generation = generation
        self.manifest = read_manifest(generation)
        self.chunks = read_chunks(generation / CHUNKS)
        try:
            self.dense = faiss.read_index(str(generation / DENSE), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError as exc:
            raise _damaged(generation / DENSE, str(exc).strip().splitlines()[-1]) from None
        if self.dense.ntotal != len(self.chunks):
            raise _damaged(generation / DENSE, f"{self.dense.ntotal} vectors for {len(self.chunks)} passages")
        self._position = {chunk.id: n for n, chunk in enumerate(self.chunks)}
        tokens = tokenize([c.evidence for c in self.chunks])
        self.bm25 = bm25s.BM25()
        self.bm25.index(tokens, show_progress=False)
        words = {i: w for w, i in tokens.vocab.items()}
        self.doc_freq = Counter(words[i] for ids in tokens.ids for i in set(ids))

    @classmethod
    def open(cls, index_dir: Path) -> Index:
        generation = live_generation(index_dir)
        if generation is None:
            raise IndexError_(
                f"No index at {index_dir} — run 'guichet ingest <corpus folder> --index {index_dir}' first."
            )
        index = cls(generation)
        if index.manifest.get("format") != FORMAT_VERSION:
            raise IndexError_(
                f"Index at {index_dir} has format {index.manifest.get('format')}, this "
                f"version reads {FORMAT_VERSION} — run 'guichet ingest' again."
            )
        return index

    def check_embedder(self, name: str, dimension: int) -> None:
        """Refuse to serve an index built with another embedder (its vectors would be meaningless)."""
        built = (self.manifest.get("embedder"), self.manifest.get("dimension"))
        if built != (name, dimension):
            raise IndexError_(
                f"Index was built with embedder {built[0]} (dimension {built[1]}) but the "
                f"configured embedder is {name} (dimension {dimension}) — run 'guichet "
                "ingest' again with this embedder."
            )

    def preceding(self, chunk: Chunk) -> Chunk | None:
        """The chunk just before ``chunk`` in its document (chunks are stored in reading order), or None."""
        position = self._position.get(chunk.id, 0)
        before = self.chunks[position - 1] if position > 0 else None
        return before if before and before.source == chunk.source else None

    def document_text(self, source: str) -> str:
        """A document's text as ingestion stored it: its passages in reading order, separated by a form feed
        (``PASSAGE_BREAK``: they overlap a little, so a sentence at a boundary is whole only within its passage)."""
        return PASSAGE_BREAK.join(c.text for c in self.chunks if c.source == source)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stemmed term; a term the corpus never uses gets the maximum."""
        n = max(len(self.chunks), 1)
        return math.log(1 + n / (self.doc_freq.get(term, 0) + 0.5))

    def search(
        self, query_vector: np.ndarray, query_text: str, k: int, pool: int = 30, lexical_weight: float = 0.05
    ) -> list[Hit]:
        """Hybrid search: the union of the dense and BM25 candidate lists, ranked by
        ``cosine + lexical_weight * bm25 / max_bm25``.

        Score fusion rather than reciprocal-rank fusion: on near-duplicate fiches (adult/minor, France/abroad)
        BM25's ranks are noisy and RRF let them override clearly better cosines; a small lexical bonus still
        breaks the many near-ties between passages that share the resident's exact words.
        """
        if not self.chunks:
            return []
        pool = min(pool, len(self.chunks))
        query_vector = query_vector.astype(np.float32)
        dense_scores, dense_ids = self.dense.search(query_vector.reshape(1, -1), pool)
        dense = {int(i): float(s) for i, s in zip(dense_ids[0], dense_scores[0], strict=True) if i >= 0}
        lexical: dict[int, float] = {}
        tokens = tokenize([query_text])
        if tokens.vocab and any(len(ids) for ids in tokens.ids):
            ids, scores = self.bm25.retrieve(tokens, k=pool, show_progress=False, n_threads=1)
            lexical = {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if s > 0}
        missing = [i for i in lexical if i not in dense]
        if missing:  # lexical-only candidates get their true cosine too
            vectors = np.stack([self.dense.reconstruct(i) for i in missing])
            dense.update({i: float(s) for i, s in zip(missing, vectors @ query_vector, strict=True)})
        top_lexical = max(lexical.values(), default=0.0) or 1.0
        fused = {i: cos + lexical_weight * lexical.get(i, 0.0) / top_lexical for i, cos in dense.items()}
        best = sorted(fused, key=lambda i: fused[i], reverse=True)[:k]
        return [Hit(self.chunks[i], dense[i], lexical.get(i, 0.0), fused[i]) for i in best]


def read_chunks(path: Path) -> list[Chunk]:
    """The passages of a generation; a truncated or corrupt file is an IndexError_ naming the line."""
    chunks = []
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    chunks.append(Chunk.from_json(json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise _damaged(path, f"line {number}: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _damaged(path, str(exc)) from None
    return chunks


def read_manifest(generation: Path) -> dict[str, Any]:
    """A generation's manifest; a missing or corrupt one is an IndexError_ that says the fix."""
    path = generation / MANIFEST
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _damaged(path, str(exc)) from None
    return data


def _damaged(path: Path, detail: str) -> IndexError_:
    """``path`` is a file of a generation: ``<index>/gen-*/<file>``."""
    index_dir = path.parent.parent
    return IndexError_(
        f"The index at {index_dir} is damaged ({path.name}: {detail}) — go back to the previous generation with "
        f"'guichet index rollback --index {index_dir}', or rebuild it with 'guichet ingest'."
    )
