"""The verifier: it reads a question (or a statement) with one sentence of a passage and says whether the sentence
answers it (or supports, contradicts or does not state it). Both judgements are learned from the town's documents.

- *supports* is a small cross-encoder: EmbeddingGemma's first layers read both texts in one input, with low-rank
  updates (LoRA) and two heads trained by ``training.train`` on pairs built from the corpus (``training.pairs``).
  What ships is the trained part only, ``models/verifier/verifier.safetensors`` (a few MB, sha256 in
  ``verifier.json``); the base weights are the embedder's, already on disk.
- *answers* is read from the card's ``answers_by``. ``embedder`` (what ships): the embedder's own cosine between
  the question (query prompt) and the sentence (document prompt), mapped to a probability by a calibration fitted
  on the training pairs (``training.calibration``). On the dev questions, written by people, it ranks the answering
  sentence first far more often than the cross-encoder's answers head, which learned the generated questions' word
  overlap (docs/verifier.md). ``cross_encoder``: that head.

``FakeVerifier`` beside them serves unit tests of one step.

>>> FakeVerifier().answers("prix du passeport", ["Passeport | Prix : 86 €", "Mairie | Horaires : 9 h"]).tolist()
[1.0, 0.0]
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.engines.hardware import embedder_precision
from bot.errors import ModelError

log = logging.getLogger(__name__)

VERIFIER_DIR = Path(__file__).resolve().parent.parent.parent / "models" / "verifier"
WEIGHTS = "verifier.safetensors"
CARD = "verifier.json"
SUPPORT_LABELS = ("entailed", "contradicted", "not_stated")
MAX_TOKENS = 160  # question and sentence together; a longer pair is cut at the end of the sentence
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def answers_input(question: str, reading: str) -> str:
    """The text the verifier reads to tell whether ``reading`` answers ``question``."""
    return f"question : {question}\nphrase : {reading}"


def supports_input(statement: str, reading: str) -> str:
    """The text the verifier reads to tell whether ``reading`` supports ``statement``."""
    return f"affirmation : {statement}\nphrase : {reading}"


class Verifier(Protocol):
    """Scores pairs; probabilities, one row per pair."""

    name: str

    def answers(self, question: str, readings: list[str]) -> np.ndarray:
        """P(the sentence answers the question), one per reading."""
        ...

    def supports(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """P(entailed, contradicted, not stated) of each (statement, reading) pair, shape (n, 3)."""
        ...


@dataclass(frozen=True)
class Card:
    """What ``verifier.json`` records: how the trained part was made and how it is read."""

    base: str  # the embedder folder's name
    base_sha256: str  # of its model.safetensors: a verifier is only valid on the base it was trained on
    layers: int
    rank: int
    alpha: float
    weights_sha256: str
    extra: dict[str, Any]

    def answers_by(self) -> str:
        """Which model says whether a sentence answers: ``embedder`` or ``cross_encoder``."""
        return str(self.extra.get("answers_by", "cross_encoder"))

    @classmethod
    def read(cls, folder: Path) -> Card:
        path = folder / CARD
        if not path.exists():
            raise ModelError(f"No verifier at {folder} — run 'make verifier' (or 'guichet models train-verifier').")
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {k: data.pop(k) for k in ("base", "base_sha256", "layers", "rank", "alpha", "weights_sha256")}
        data.pop("threshold", None)  # older cards: the threshold lives in config/thresholds.yaml (evidence)
        return cls(**known, extra=data)


def base_sha256(base_path: Path) -> str:
    """The sha256 of the embedder's weights: the catalogue's, checked when it was fetched, for the catalogue model;
    computed for another folder (GUICHET_EMBEDDER_PATH)."""
    from bot.engines.model_store import EMBEDDING_GEMMA

    if base_path.name == EMBEDDING_GEMMA.file and EMBEDDING_GEMMA.inner_check:
        return EMBEDDING_GEMMA.inner_check[1]
    return sha256_of(base_path / "model.safetensors")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class VerifierNet:
    """The network: the base encoder's first ``layers`` layers, mean-pooled, and the two heads (torch modules).

    Built by ``build`` so that training and inference share one definition.
    """

    @staticmethod
    def build(base_path: Path, layers: int, dtype: Any) -> Any:
        import torch
        from torch import nn
        from transformers import AutoModel

        encoder = AutoModel.from_pretrained(str(base_path), local_files_only=True, dtype=dtype)
        encoder.layers = nn.ModuleList(list(encoder.layers)[:layers])
        encoder.config.num_hidden_layers = layers
        if getattr(encoder.config, "layer_types", None):
            encoder.config.layer_types = encoder.config.layer_types[:layers]

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.encoder = encoder
                width = encoder.config.hidden_size
                self.answers = nn.Linear(width, 1)
                self.supports = nn.Linear(width, len(SUPPORT_LABELS))

            def pooled(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
                hidden: torch.Tensor = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                return ((hidden * weights).sum(1) / weights.sum(1).clamp(min=1)).float()

        return Net()


def lora_deltas(state: dict[str, Any], alpha: float, rank: int) -> dict[str, Any]:
    """``{linear weight name: B @ A * alpha / rank}`` from saved LoRA factors (``<name>.lora_a`` / ``.lora_b``)."""
    deltas = {}
    for key in state:
        if key.endswith(".lora_a"):
            name = key[: -len(".lora_a")]
            deltas[f"{name}.weight"] = (state[f"{name}.lora_b"] @ state[key]) * (alpha / rank)
    return deltas


class CrossEncoderVerifier:
    """The trained verifier, loaded offline: base weights from the embedder folder, LoRA merged into them."""

    def __init__(self, base_path: Path, folder: Path = VERIFIER_DIR, dtype: str = "auto", batch_size: int = 16):
        import torch
        from safetensors.torch import load_file
        from transformers import AutoTokenizer

        card = Card.read(folder)
        weights = folder / WEIGHTS
        if not weights.exists() or sha256_of(weights) != card.weights_sha256:
            raise ModelError(
                f"The verifier's weights at {weights} are missing or do not match {folder / CARD} — "
                "run 'make verifier' to rebuild them."
            )
        if base_path.name != card.base or card.base_sha256 != base_sha256(base_path):
            raise ModelError(
                f"The verifier at {folder} was trained on {card.base} ({card.base_sha256[:12]}), not on the "
                f"configured embedder {base_path} — run 'make verifier' to train it on this one."
            )
        precision = embedder_precision(dtype)
        torch_dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}[precision.dtype]
        self.tokenizer = AutoTokenizer.from_pretrained(str(base_path), local_files_only=True)
        self.net = VerifierNet.build(base_path, card.layers, torch.float32)
        state = load_file(str(weights))
        with torch.no_grad():
            params = dict(self.net.named_parameters())
            for name, delta in lora_deltas(state, card.alpha, card.rank).items():
                params[name] += delta.to(params[name].dtype)
            for name in ("answers.weight", "answers.bias", "supports.weight", "supports.bias"):
                params[name].copy_(state[name])
        self.net = self.net.to(torch_dtype).eval()
        self.card, self.batch_size, self.dtype = card, batch_size, precision.dtype
        self.name = f"verifier-{card.weights_sha256[:12]}"
        log.info("verifier %s: %d layers of %s in %s", self.name, card.layers, card.base, precision.dtype)

    def _pooled(self, texts: list[str]) -> Any:
        import torch

        outputs = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                outputs.append(self.net.pooled(batch["input_ids"], batch["attention_mask"]))
        return torch.cat(outputs) if outputs else torch.zeros((0, 1))

    def answers(self, question: str, readings: list[str]) -> np.ndarray:
        import torch

        if not readings:
            return np.zeros(0, dtype=np.float32)
        pooled = self._pooled([answers_input(question, r) for r in readings])
        with torch.inference_mode():
            logits = self.net.answers(pooled.to(self.net.answers.weight.dtype)).float().squeeze(-1)
        return torch.sigmoid(logits).numpy().astype(np.float32)

    def supports(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        import torch

        if not pairs:
            return np.zeros((0, len(SUPPORT_LABELS)), dtype=np.float32)
        pooled = self._pooled([supports_input(s, r) for s, r in pairs])
        with torch.inference_mode():
            logits = self.net.supports(pooled.to(self.net.supports.weight.dtype)).float()
        return torch.softmax(logits, -1).numpy().astype(np.float32)


def document_text(reading: str) -> str:
    """A sentence as the embedder reads it, in the document prompt its makers trained it with: ``title: <the
    document's title> | text: <headings> | <sentence>``. The reading is ``title > headings | sentence``
    (``bot.answer.candidates``). With the title in its own field the embedder ranks the answering sentence first
    for more dev questions than with ``title: none`` (docs/verifier.md).

    >>> document_text("Passeport > Tarifs | Majeur : 86 €")
    'title: Passeport | text: Tarifs | Majeur : 86 €'
    >>> document_text("Passeport | Le passeport coûte 86 €.")
    'title: Passeport | text: Le passeport coûte 86 €.'
    """
    where, bar, sentence = reading.rpartition(" | ")  # a web page's title may hold " | " itself
    if not bar:
        return f"title: none | text: {reading}"
    title, _, headings = where.partition(" > ")
    return f"title: {title or 'none'} | text: " + (f"{headings} | {sentence}" if headings else sentence)


class EmbedderVerifier:
    """*answers* from the embedder (cosine, calibrated: ``sigmoid(a·cos + b)``), *supports* from the cross-encoder.

    The sentences' vectors are kept (``cache_size`` of them, the oldest dropped first): the passages a town's
    residents are shown repeat, and embedding a turn's sentences costs about a second on two cores."""

    def __init__(
        self, embedder: Any, calibration: tuple[float, float], supports_by: Any, cache_size: int = 20_000
    ) -> None:
        self.embedder, self.calibration, self.supports_by = embedder, calibration, supports_by
        self.cache: dict[str, np.ndarray] = {}
        self.cache_size = cache_size
        self.name = f"{embedder.name}+{supports_by.name}"

    def cosines(self, question: str, readings: list[str]) -> np.ndarray:
        todo = [r for r in dict.fromkeys(readings) if r not in self.cache]
        if todo:
            vectors = self.embedder.embed_documents([document_text(r) for r in todo])
            self.cache.update(zip(todo, vectors, strict=True))
        query = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        cosines = np.asarray([float(self.cache[r] @ query) for r in readings], dtype=np.float32)
        while len(self.cache) > self.cache_size:  # the oldest first (dicts keep their insertion order)
            del self.cache[next(iter(self.cache))]
        return cosines

    def answers(self, question: str, readings: list[str]) -> np.ndarray:
        if not readings:
            return np.zeros(0, dtype=np.float32)
        a, b = self.calibration
        return (1.0 / (1.0 + np.exp(-(a * self.cosines(question, readings) + b)))).astype(np.float32)

    def supports(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        return np.asarray(self.supports_by.supports(pairs))


class FakeVerifier:
    """Word overlap: the share of the question's words (4 letters or more) found in the sentence. For unit tests
    of one step; ``scripted`` maps a sentence's text to the probability to return for it."""

    name = "fake-verifier"

    def __init__(self, scripted: dict[str, float] | None = None):
        self.scripted = scripted or {}

    @staticmethod
    def _words(text: str) -> set[str]:
        return {w for w in re.findall(r"\w+", text.lower()) if len(w) >= 4}

    def answers(self, question: str, readings: list[str]) -> np.ndarray:
        asked = self._words(question)
        scores = [self.scripted.get(r, len(asked & self._words(r)) / len(asked) if asked else 0.0) for r in readings]
        return np.asarray(scores, dtype=np.float32)

    def supports(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        rows = []
        for statement, reading in pairs:
            said = self._words(statement)
            share = len(said & self._words(reading)) / len(said) if said else 0.0
            rows.append([share, 0.0, 1.0 - share])
        return np.asarray(rows, dtype=np.float32).reshape(-1, len(SUPPORT_LABELS))
