"""Text embedders behind one narrow interface, with a deterministic fake for unit tests.

>>> fake = FakeEmbedder()
>>> fake.embed_documents(["cantine scolaire"]).shape
(1, 64)
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Protocol

import numpy as np

from bot.engines.hardware import PRECISIONS, embedder_precision
from bot.errors import ModelError

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (one row per text)."""

    name: str
    dimension: int

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_for_classification(self, texts: list[str]) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers folder on disk (EmbeddingGemma by default), loaded offline on CPU.

    Documents arrive already formatted (``title: … | text: …``, see ``Chunk.embedding_text``);
    queries get the model's own query prompt.
    """

    def __init__(self, path: Path, dtype: str = "auto", batch_size: int = 16, threads: int = 0):
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a folder on disk never needs the hub
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no "Loading weights" bar
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise ModelError(
                f"No sentence-transformers model at {path} — run 'guichet models fetch' "
                "or set GUICHET_EMBEDDER_PATH to a model folder."
            )
        if dtype not in PRECISIONS:
            raise ModelError(f"Config 'GUICHET_EMBEDDER_DTYPE' has value {dtype!r}. Use {', '.join(PRECISIONS)}.")
        self.precision = embedder_precision(dtype)
        if threads:
            torch.set_num_threads(threads)  # process-wide: only a process that embeds and nothing else sets it
        log.info("embedder %s in %s (%s)", path.name, self.precision.dtype, self.precision.reason)
        torch_dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}[self.precision.dtype]
        self.model = SentenceTransformer(
            str(path), device="cpu", local_files_only=True, model_kwargs={"torch_dtype": torch_dtype}
        )
        self.name = path.name
        self.dimension = int(self.model.get_embedding_dimension() or 0)
        self.batch_size = batch_size
        prompts = getattr(self.model, "prompts", {}) or {}
        self._query_prompt = prompts.get("query", prompts.get("Retrieval-query", ""))
        self._classification_prompt = prompts.get("Classification", self._query_prompt)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            prompt="",
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        vector = self.model.encode(
            [text], prompt=self._query_prompt, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        first: np.ndarray = np.asarray(vector, dtype=np.float32)[0]
        return first

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Many questions at once, with the query prompt (batched: for evaluations and training, not turns)."""
        vectors = self.model.encode(
            texts,
            prompt=self._query_prompt,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_for_classification(self, texts: list[str]) -> np.ndarray:
        """Vectors for telling what kind of message a text is (the model's classification prompt)."""
        vectors = self.model.encode(
            texts,
            prompt=self._classification_prompt,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class FakeEmbedder:
    """Hashed bag of words: similar wording gives similar vectors. For unit tests of one step only."""

    name = "fake-embedder"

    def __init__(self, dimension: int = 64):
        self.dimension = dimension

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.embed_documents(texts)

    def embed_for_classification(self, texts: list[str]) -> np.ndarray:
        return self.embed_documents(texts)
