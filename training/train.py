"""Train the verifier on CPU: LoRA on the first layers of EmbeddingGemma read as a cross-encoder, and two heads.

Only the low-rank factors and the heads are trained and saved (``models/verifier/verifier.safetensors``, a few MB);
the base weights stay the embedder's. Deterministic for a given seed, data and machine kind.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.engines.hardware import embedder_precision
from bot.engines.verifier import (
    CARD,
    LORA_TARGETS,
    MAX_TOKENS,
    WEIGHTS,
    VerifierNet,
    answers_input,
    base_sha256,
    sha256_of,
    supports_input,
)
from training.pairs import Pair

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """How the verifier is trained; recorded in its card."""

    layers: int = 6
    rank: int = 16
    alpha: float = 32.0
    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 3e-4
    head_learning_rate: float = 2e-3
    max_tokens: int = MAX_TOKENS
    seed: int = 0
    threads: int = 0  # 0: torch's default (one per core)


def add_lora(net: Any, rank: int, alpha: float) -> list[Any]:
    """Wrap the encoder's linear layers named in ``LORA_TARGETS`` with trainable low-rank factors; returns them."""
    import torch
    from torch import nn

    class LoRALinear(nn.Module):
        def __init__(self, base: nn.Linear):
            super().__init__()
            self.base = base
            self.lora_a = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
            self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
            self.scale = alpha / rank

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            delta = (x.to(self.lora_a.dtype) @ self.lora_a.T @ self.lora_b.T) * self.scale
            return self.base(x) + delta.to(x.dtype)

    wrapped = []
    for _, module in list(net.encoder.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in LORA_TARGETS and isinstance(child, nn.Linear):
                lora = LoRALinear(child)
                setattr(module, child_name, lora)
                wrapped.append(lora)
    return wrapped


def trained_state(net: Any) -> dict[str, Any]:
    """What is saved: LoRA factors keyed by the linear weight they update, and the heads."""
    state = {}
    for name, param in net.named_parameters():
        if name.endswith((".lora_a", ".lora_b")):
            # "encoder.layers.0.self_attn.q_proj.lora_a" updates "encoder.layers.0.self_attn.q_proj.weight"
            state[name] = param.detach().float().contiguous()
        elif name.startswith(("answers.", "supports.")):
            state[name] = param.detach().float().contiguous()
    return state


def _batches(pairs: list[Pair], size: int, rng: random.Random) -> list[list[Pair]]:
    """Batches of one task each, shuffled."""
    batches = []
    for task in ("answers", "supports"):
        of_task = [p for p in pairs if p.task == task]
        rng.shuffle(of_task)
        batches += [of_task[i : i + size] for i in range(0, len(of_task), size)]
    rng.shuffle(batches)
    return batches


def _inputs(batch: list[Pair]) -> list[str]:
    make = answers_input if batch[0].task == "answers" else supports_input
    return [make(p.a, p.b) for p in batch]


def train(
    pairs: list[Pair], base_path: Path, out_dir: Path, recipe: Recipe, extra_card: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Train on the ``train`` side of ``pairs``, write the weights and the card; returns the card."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    torch.manual_seed(recipe.seed)
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    rng = random.Random(recipe.seed)
    precision = embedder_precision("auto")
    autocast_dtype = torch.bfloat16 if precision.dtype == "bfloat16" else None
    tokenizer = AutoTokenizer.from_pretrained(str(base_path), local_files_only=True)
    net = VerifierNet.build(base_path, recipe.layers, torch.float32)
    for param in net.encoder.parameters():
        param.requires_grad_(False)
    add_lora(net, recipe.rank, recipe.alpha)
    lora = [p for n, p in net.named_parameters() if n.endswith((".lora_a", ".lora_b"))]
    heads = [*net.answers.parameters(), *net.supports.parameters()]
    optimiser = torch.optim.AdamW(
        [{"params": lora, "lr": recipe.learning_rate}, {"params": heads, "lr": recipe.head_learning_rate}],
        weight_decay=0.01,
    )
    training = [p for p in pairs if p.split == "train"]
    positives = sum(1 for p in training if p.task == "answers" and p.label == 1)
    negatives = sum(1 for p in training if p.task == "answers" and p.label == 0)
    pos_weight = torch.tensor(negatives / max(positives, 1))  # answers: as many positives as negatives, in weight
    steps = recipe.epochs * len(_batches(training, recipe.batch_size, random.Random(0)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / 50) * max(0.05, 1 - step / max(steps, 1))
    )
    net.train()
    started, step = time.monotonic(), 0
    for epoch in range(recipe.epochs):
        for batch in _batches(training, recipe.batch_size, rng):
            encoded = tokenizer(
                _inputs(batch), padding=True, truncation=True, max_length=recipe.max_tokens, return_tensors="pt"
            )
            labels = torch.tensor([p.label for p in batch])
            with torch.autocast("cpu", dtype=autocast_dtype, enabled=autocast_dtype is not None):
                pooled = net.pooled(encoded["input_ids"], encoded["attention_mask"])
            if batch[0].task == "answers":
                logits = net.answers(pooled).squeeze(-1)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, labels.float(), pos_weight=pos_weight
                )
            else:
                loss = torch.nn.functional.cross_entropy(net.supports(pooled), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*lora, *heads], 1.0)
            optimiser.step()
            scheduler.step()
            optimiser.zero_grad()
            step += 1
            if step % 50 == 0:
                rate = step * recipe.batch_size / (time.monotonic() - started)
                log.info("epoch %d step %d/%d loss %.3f (%.1f pairs/s)", epoch + 1, step, steps, loss.item(), rate)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS
    save_file(trained_state(net), str(weights))
    card = {
        "base": base_path.name,
        "base_sha256": base_sha256(base_path),
        "layers": recipe.layers,
        "rank": recipe.rank,
        "alpha": recipe.alpha,
        "weights_sha256": sha256_of(weights),
        "recipe": recipe.__dict__,
        "train_pairs": len(training),
        "train_seconds": round(time.monotonic() - started, 1),
        **(extra_card or {}),
    }
    (out_dir / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return card


def scores(verifier: Any, pairs: list[Pair]) -> np.ndarray:
    """The verifier's score for each pair: P(answers) for answers pairs, P(label) rows for supports pairs."""
    out: list[Any] = []
    for pair in pairs:
        if pair.task == "answers":
            out.append(float(verifier.answers(pair.a, [pair.b])[0]))
        else:
            out.append(verifier.supports([(pair.a, pair.b)])[0])
    return np.asarray(out, dtype=object)
