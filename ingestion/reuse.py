"""The vectors a build copies instead of computing: its own index's live generation first, then other indexes'.

A passage's hash covers only what is embedded (title, heading path, text), not its file's path, so the national
fiches embedded once in a syndicate's index serve every commune's index that holds them
(``guichet ingest DOCS --index DIR --reuse-vectors-from SHARED``). An index is read only if it was built with the
same embedder and dimension, and from its memory-mapped FAISS file, one vector at a time: never loaded whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from bot.engines.embedder import Embedder
from bot.engines.index import CHUNKS, CURRENT, DENSE, FORMAT_VERSION, MANIFEST, live_generation, read_manifest
from bot.errors import IndexError_


class Unreusable(Exception):
    """An index whose vectors cannot be copied; the message says why, in French (shown on the command line)."""


class NothingBuilt(Unreusable):
    """No index was ever built in that folder (for a build's own index: its first build, nothing to say)."""


@dataclass
class StoredVectors:
    """One index's live generation: the row of each chunk hash in its FAISS file, which stays memory-mapped."""

    index_dir: Path
    rows: dict[str, int]
    dense: faiss.Index

    @classmethod
    def open(cls, index_dir: Path, embedder: Embedder) -> StoredVectors:
        """The live generation of ``index_dir`` if its vectors are ``embedder``'s, else ``Unreusable`` saying why."""
        if not index_dir.is_dir():
            raise NothingBuilt("ce dossier n'existe pas")
        try:
            generation = live_generation(index_dir)
        except (OSError, ValueError) as exc:
            raise Unreusable(f"index endommagé ({CURRENT} illisible : {exc})") from None
        if generation is None:
            inside = index_dir / "index"  # a commune's folder given instead of its index
            hint = f" ; il y en a un dans {inside}" if (inside / CURRENT).exists() else ""
            raise NothingBuilt(f"aucun index n'y a été construit (pas de fichier {CURRENT} valide){hint}")
        try:
            manifest = read_manifest(generation)
        except IndexError_:
            raise Unreusable(f"index endommagé ({generation.name}/{MANIFEST} illisible)") from None
        built = (manifest.get("embedder"), manifest.get("dimension"))
        if built != (embedder.name, embedder.dimension):
            raise Unreusable(
                f"construit avec l'embedder {built[0]} (dimension {built[1]}), alors que cette construction utilise "
                f"{embedder.name} (dimension {embedder.dimension}) : ses vecteurs ne sont pas comparables"
            )
        if manifest.get("format") != FORMAT_VERSION:
            raise Unreusable(f"index au format {manifest.get('format')}, cette version lit le format {FORMAT_VERSION}")
        rows: dict[str, int] = {}
        count = 0
        try:
            with open(generation / CHUNKS, encoding="utf-8") as lines:
                for count, line in enumerate(lines, 1):
                    rows[json.loads(line)["hash"]] = count - 1
            dense = faiss.read_index(str(generation / DENSE), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise Unreusable(f"index endommagé ({generation.name} : {detail})") from None
        # Rows are positions in the FAISS file: a count or width that disagrees would copy wrong vectors.
        if dense.ntotal != count or dense.d != embedder.dimension:
            raise Unreusable(
                f"index endommagé ({generation.name} : {dense.ntotal} vecteurs de dimension {dense.d} "
                f"pour {count} passages)"
            )
        return cls(index_dir, rows, dense)

    def vector(self, chunk_hash: str) -> np.ndarray:
        return np.asarray(self.dense.reconstruct(self.rows[chunk_hash]))


@dataclass
class ReusableVectors:
    """Where a build copies each known passage's vector from: its own index, then the others in the order given.

    >>> reusable = ReusableVectors.gather(Path("valbourg/index"), [Path("syndicat/index")], embedder)  # doctest: +SKIP
    >>> reusable.source_of(chunk.hash).index_dir  # doctest: +SKIP
    PosixPath('syndicat/index')
    """

    own: StoredVectors | None = None
    others: list[StoredVectors] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"index", "reason"}: not read, the reason in French

    @classmethod
    def gather(cls, index_dir: Path, others: Iterable[Path], embedder: Embedder) -> ReusableVectors:
        """Every index that can lend vectors to a build of ``index_dir``; the others that cannot are ``skipped``."""
        reusable = cls()
        try:
            reusable.own = StoredVectors.open(index_dir, embedder)
        except NothingBuilt:
            pass  # a first build: nothing to reuse, nothing to warn about
        except Unreusable as exc:
            reusable.skipped.append({"index": str(index_dir), "reason": str(exc)})
        seen = {index_dir.resolve()}
        for other in others:
            if other.resolve() in seen:
                continue  # the index being built, or one named twice
            seen.add(other.resolve())
            try:
                reusable.others.append(StoredVectors.open(other, embedder))
            except Unreusable as exc:
                reusable.skipped.append({"index": str(other), "reason": str(exc)})
        return reusable

    @property
    def sources(self) -> list[StoredVectors]:
        return ([self.own] if self.own else []) + self.others

    def source_of(self, chunk_hash: str) -> StoredVectors | None:
        """The first index holding this passage's vector, or None: it must be computed."""
        return next((source for source in self.sources if chunk_hash in source.rows), None)

    def vector(self, chunk_hash: str) -> np.ndarray:
        source = self.source_of(chunk_hash)
        if source is None:
            raise KeyError(chunk_hash)
        return source.vector(chunk_hash)
