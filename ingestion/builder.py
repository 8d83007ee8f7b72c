"""Incremental, atomic index builds with an ingestion report.

Only chunks whose content hash is new are embedded; vectors of unchanged chunks are copied from the live
generation; documents that disappeared simply are not carried over. The new generation becomes live in
one atomic rename of the ``CURRENT`` pointer.
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from bot.embedder import Embedder
from bot.errors import IngestionError
from bot.index import CHUNKS, CURRENT, DENSE, FORMAT_VERSION, MANIFEST, REPORT, live_generation
from ingestion.chunker import Chunk, split_document
from ingestion.loaders import DEFAULT_LIMITS, SUPPORTED, Limits, Unusable, load

EMBED_BATCH = 32


@dataclass
class Report:
    """What a build did, file by file problems included (also written as ``report.json``)."""

    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    problems: list[dict] = field(default_factory=list)  # {"source", "problem", "detail"}: not indexed
    notes: list[dict] = field(default_factory=list)  # {"source", "detail"}: indexed, with a caveat
    seconds: float = 0.0
    generation: str = ""

    def add(self, source: str, problem: str, detail: str = "") -> None:
        self.problems.append({"source": source, "problem": problem, "detail": detail})


def discover(roots: list[Path], exclude: list[str]) -> tuple[Path, list[Path]]:
    """Every file under the roots (hidden ones skipped), and the base directory sources are relative to."""
    roots = [r.resolve() for r in roots]
    for root in roots:
        if not root.exists():
            raise IngestionError(f"Corpus path {root} does not exist.")
    base = (
        roots[0]
        if len(roots) == 1 and roots[0].is_dir()
        else Path(os.path.commonpath([r if r.is_dir() else r.parent for r in roots]))
    )
    if len(roots) > 1 and base in roots:
        base = base.parent
    files = []
    for root in roots:
        # Broken or looping links are kept: loading them fails, and the report says so.
        candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() or not p.exists())
        for path in candidates:
            rel = path.relative_to(base).as_posix()
            if any(part.startswith(".") for part in Path(rel).parts):
                continue
            if any(fnmatch.fnmatch(path.name, pat) or fnmatch.fnmatch(rel, pat) for pat in exclude):
                continue
            files.append(path)
    return base, files


def build(
    roots: list[Path],
    index_dir: Path,
    embedder: Embedder,
    exclude: list[str] = (),
    progress: Callable[[str, int, int], None] = lambda *_: None,
    limits: Limits = DEFAULT_LIMITS,
) -> Report:
    """Ingest ``roots`` into ``index_dir``; returns the report. One bad file never stops the build."""
    started = time.monotonic()
    report = Report()
    base, files = discover(roots, list(exclude))
    index_dir.mkdir(parents=True, exist_ok=True)
    with _build_lock(index_dir):
        chunks = _load_and_split(files, base, report, progress, limits)
        previous = _previous_vectors(index_dir, embedder)
        vectors = _vectors_for(chunks, previous, embedder, report, progress)
        report.removed = len(set(previous) - {c.hash for c in chunks})
        report.chunks = len(chunks)
        report.seconds = round(time.monotonic() - started, 2)
        manifest = {
            "format": FORMAT_VERSION,
            "embedder": embedder.name,
            "dimension": embedder.dimension,
            "chunk_count": len(chunks),
            "document_count": report.documents,
            "corpus_hash": hashlib.sha256("".join(sorted(c.hash for c in chunks)).encode()).hexdigest(),
            "roots": [str(r) for r in roots],
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        report.generation = _write_generation(index_dir, chunks, vectors, manifest, report)
    return report


def _load_and_split(files: list[Path], base: Path, report: Report, progress, limits: Limits) -> list[Chunk]:
    seen: dict[str, str] = {}
    chunks: list[Chunk] = []
    for n, path in enumerate(files, 1):
        progress("Lecture des documents", n, len(files))
        source = path.relative_to(base).as_posix()
        if path.suffix.lower() not in SUPPORTED:
            report.add(source, "unsupported", f"file type {path.suffix or '(none)'} is not ingested")
            continue
        try:
            doc = load(path, base, limits)
            pieces = split_document(doc)
        except Unusable as exc:
            report.add(source, exc.kind, str(exc))
            continue
        except Exception as exc:  # a damaged file of any kind is reported, never fatal
            report.add(source, "unreadable", f"{type(exc).__name__}: {exc}")
            continue
        digest = hashlib.sha256(doc.markdown.encode("utf-8")).hexdigest()
        if digest in seen:
            report.add(source, "duplicate", f"same content as {seen[digest]}")
            continue
        if not pieces:
            report.add(source, "empty", "no text left after parsing")
            continue
        seen[digest] = source
        report.notes.extend({"source": source, "detail": note} for note in doc.notes)
        report.documents += 1
        chunks.extend(pieces)
    return chunks


def _previous_vectors(index_dir: Path, embedder: Embedder) -> dict[str, np.ndarray]:
    """Vectors of the live generation by chunk hash, if it was built with the same embedder."""
    generation = live_generation(index_dir)
    if generation is None:
        return {}
    manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    if (manifest.get("embedder"), manifest.get("dimension")) != (embedder.name, embedder.dimension):
        return {}
    dense = faiss.read_index(str(generation / DENSE))
    with open(generation / CHUNKS, encoding="utf-8") as fh:
        hashes = [json.loads(line)["hash"] for line in fh]
    if not hashes:
        return {}
    matrix = dense.reconstruct_n(0, len(hashes))
    return dict(zip(hashes, matrix, strict=True))


def _vectors_for(chunks: list[Chunk], previous: dict, embedder: Embedder, report: Report, progress) -> np.ndarray:
    todo = sorted({c.hash: c for c in chunks if c.hash not in previous}.values(), key=lambda c: c.id)
    fresh: dict[str, np.ndarray] = {}
    for start in range(0, len(todo), EMBED_BATCH):
        batch = todo[start : start + EMBED_BATCH]
        progress("Calcul des vecteurs", start, len(todo))
        for chunk, vector in zip(batch, embedder.embed_documents([c.embedding_text() for c in batch]), strict=True):
            fresh[chunk.hash] = vector
    progress("Calcul des vecteurs", len(todo), len(todo))
    report.embedded = len(fresh)
    report.reused = sum(1 for c in chunks if c.hash in previous)
    if not chunks:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    return np.stack([fresh.get(c.hash, previous.get(c.hash)) for c in chunks]).astype(np.float32)


def _write_generation(index_dir: Path, chunks: list[Chunk], vectors: np.ndarray, manifest: dict, report: Report) -> str:
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = index_dir / f".{name}.partial"
    tmp.mkdir()
    with open(tmp / CHUNKS, "w", encoding="utf-8") as fh:
        for chunk in chunks:
            fh.write(json.dumps(chunk.to_json(), ensure_ascii=False) + "\n")
    dense = faiss.IndexFlatIP(manifest["dimension"])
    if len(vectors):
        dense.add(vectors)
    faiss.write_index(dense, str(tmp / DENSE))
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    report.generation = name
    (tmp / REPORT).write_text(json.dumps(report.__dict__, indent=2, ensure_ascii=False), encoding="utf-8")
    _fsync_dir(tmp)
    tmp.rename(index_dir / name)
    pointer = index_dir / f".{CURRENT}.tmp"
    pointer.write_text(name, encoding="utf-8")
    os.replace(pointer, index_dir / CURRENT)  # the atomic switch
    _fsync_dir(index_dir)
    for old in index_dir.iterdir():
        if old.name != name and (old.name.startswith("gen-") or old.name.endswith(".partial")):
            shutil.rmtree(old, ignore_errors=True)
    return name


def _fsync_dir(path: Path) -> None:
    for file in [*path.iterdir(), path]:
        if file.is_file() or file == path:
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


@contextmanager
def _build_lock(index_dir: Path):
    with open(index_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestionError(f"Another 'guichet ingest' is writing {index_dir}; wait for it to finish.") from None
        yield
