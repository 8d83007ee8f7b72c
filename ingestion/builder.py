"""Incremental, atomic index builds with an ingestion report.

Only chunks whose content hash is new are embedded; vectors of unchanged chunks are copied from the live
generation, or from other indexes built with the same embedder (``ingestion.reuse``), read from their memory-mapped
files as they are written (no index is ever loaded whole); documents that disappeared simply are not carried over.
The new generation becomes live in one atomic rename of the ``CURRENT`` pointer; the last ``keep`` generations stay
on disk for ``guichet index rollback``.
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
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import faiss
import numpy as np

from bot.engines.chunk import Chunk
from bot.engines.embedder import Embedder
from bot.engines.index import (
    CHUNKS,
    DENSE,
    FORMAT_VERSION,
    MANIFEST,
    REPORT,
    fsync,
    live_generation,
    switch_to,
)
from bot.errors import IngestionError
from ingestion.chunker import split_document
from ingestion.loaders import DEFAULT_LIMITS, SUPPORTED, Limits, Unusable, load
from ingestion.reuse import ReusableVectors

EMBED_BATCH = 32
WRITE_BATCH = 1024  # vectors copied into the new generation at a time
KEEP_GENERATIONS = 3


@dataclass
class Report:
    """What a build did, file by file problems included (also written as ``report.json``)."""

    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    reused_from: dict[str, int] = field(default_factory=dict)  # index folder -> passages whose vector came from it
    reuse_skipped: list[dict] = field(default_factory=list)  # {"index", "reason"}: an index not read, and why
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
    keep: int = KEEP_GENERATIONS,
    sources_file: Path | None = None,
    reuse_from: Iterable[Path] = (),
    warn: Callable[[str], None] = lambda _: None,
) -> Report:
    """Ingest ``roots`` into ``index_dir``; returns the report. One bad file never stops the build. ``sources_file``:
    the sources file the roots were synced from (``guichet sync``), recorded so the console updates them again.
    ``reuse_from``: other indexes whose vectors of the same passages are copied; one that cannot be read (missing,
    damaged, another embedder) is skipped, and ``warn`` told why in French, before anything is embedded."""
    started = time.monotonic()
    report = Report()
    base, files = discover(roots, list(exclude))
    index_dir.mkdir(parents=True, exist_ok=True)
    with _build_lock(index_dir):
        reusable = ReusableVectors.gather(index_dir, reuse_from, embedder)
        report.reuse_skipped = reusable.skipped
        for skipped in reusable.skipped:
            warn(f"vecteurs de {skipped['index']} non réutilisés : {skipped['reason']}. La construction continue.")
        chunks = _load_and_split(files, base, report, progress, limits)
        fresh = _embed_new(chunks, reusable, embedder, report, progress)
        report.removed = len(set(reusable.own.rows if reusable.own else ()) - {c.hash for c in chunks})
        report.chunks = len(chunks)
        report.seconds = round(time.monotonic() - started, 2)
        manifest = {
            "format": FORMAT_VERSION,
            "embedder": embedder.name,
            "dimension": embedder.dimension,
            "chunk_count": len(chunks),
            "document_count": report.documents,
            "corpus_hash": hashlib.sha256("".join(sorted(c.hash for c in chunks)).encode()).hexdigest(),
            "roots": [str(r.resolve()) for r in roots],  # what a re-indexing from the staff console rebuilds
            "exclude": list(exclude),
            **({"sources_file": str(sources_file.resolve())} if sources_file else {}),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        report.generation = _write_generation(index_dir, chunks, fresh, reusable, manifest, report)
        _keep_newest(index_dir, keep)
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


def _embed_new(chunks: list[Chunk], reusable: ReusableVectors, embedder: Embedder, report: Report, progress) -> dict:
    """Vectors of the chunks no reusable index has, by hash; the others are counted by the index they come from.

    Chunks go to the embedder by length, so each batch pads its texts to a similar length: in document order, a
    third of the tokens computed over the shared corpus were padding.
    """
    origin = {c.hash: reusable.source_of(c.hash) for c in chunks}
    todo = sorted(
        {c.hash: c for c in chunks if origin[c.hash] is None}.values(),
        key=lambda c: (len(c.embedding_text()), c.id),
    )
    fresh: dict[str, np.ndarray] = {}
    for start in range(0, len(todo), EMBED_BATCH):
        batch = todo[start : start + EMBED_BATCH]
        progress("Calcul des vecteurs", start, len(todo))
        for chunk, vector in zip(batch, embedder.embed_documents([c.embedding_text() for c in batch]), strict=True):
            fresh[chunk.hash] = vector
    progress("Calcul des vecteurs", len(todo), len(todo))
    report.embedded = len(fresh)
    counts = Counter(str(source.index_dir) for c in chunks if (source := origin[c.hash]) is not None)
    report.reused_from = {str(s.index_dir): counts[str(s.index_dir)] for s in reusable.sources}
    report.reused = sum(counts.values())
    return fresh


def _write_generation(
    index_dir: Path, chunks: list[Chunk], fresh: dict, reusable: ReusableVectors, manifest: dict, report: Report
) -> str:
    name = f"gen-{datetime.now().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:4]}"  # sorts by build time
    tmp = index_dir / f".{name}.partial"
    tmp.mkdir()
    with open(tmp / CHUNKS, "w", encoding="utf-8") as fh:
        for chunk in chunks:
            fh.write(json.dumps(chunk.to_json(), ensure_ascii=False) + "\n")
    dense = faiss.IndexFlatIP(manifest["dimension"])
    for start in range(0, len(chunks), WRITE_BATCH):
        batch = chunks[start : start + WRITE_BATCH]
        vectors = [fresh[c.hash] if c.hash in fresh else reusable.vector(c.hash) for c in batch]
        dense.add(np.stack(vectors).astype(np.float32))
    faiss.write_index(dense, str(tmp / DENSE))
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    report.generation = name
    (tmp / REPORT).write_text(json.dumps(report.__dict__, indent=2, ensure_ascii=False), encoding="utf-8")
    _fsync_files(tmp)
    tmp.rename(index_dir / name)
    fsync(index_dir)
    switch_to(index_dir, name)
    return name


def _keep_newest(index_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest generations (the live one always stays) and leftovers of killed builds."""
    live = live_generation(index_dir)
    kept = sorted(p.name for p in index_dir.glob("gen-*"))[-max(1, keep) :]
    for old in index_dir.iterdir():
        stale = old.name.startswith("gen-") and old.name not in kept and (live is None or old.name != live.name)
        if stale or (old.name.startswith(".gen-") and old.name.endswith(".partial")):
            shutil.rmtree(old, ignore_errors=True)


def _fsync_files(path: Path) -> None:
    for file in path.iterdir():
        fsync(file)
    fsync(path)


@contextmanager
def _build_lock(index_dir: Path):
    with open(index_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestionError(f"Another 'guichet ingest' is writing {index_dir}; wait for it to finish.") from None
        yield
