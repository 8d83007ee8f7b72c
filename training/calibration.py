"""The calibration of the embedder's *answers* judgement: ``sigmoid(a·cos + b)``, fitted on the training pairs.

The cosine between a question and a sentence ranks sentences; the calibration turns it into a probability that the
sentence answers, so that the evidence threshold (``config/thresholds.yaml``, chosen on dev) reads as one. Fitted
on the answers pairs of the training side whose label is right by construction or by the local model's question
(``training.pairs``): never on an evaluation question.
"""

from __future__ import annotations

import numpy as np

from bot.engines.embedder import Embedder
from bot.engines.verifier import document_text
from training.pairs import Pair


def fit_calibration(embedder: Embedder, pairs: list[Pair], split: str = "train") -> tuple[float, float]:
    """``(a, b)`` of a logistic regression of the label on the cosine, over ``split``'s answers pairs (classes
    weighted alike: the pairs hold more sentences that do not answer than sentences that do)."""
    from sklearn.linear_model import LogisticRegression

    labelled = [p for p in pairs if p.task == "answers" and p.split == split]
    if len({p.label for p in labelled}) < 2:
        raise ValueError(f"No answering and non-answering pairs on the {split} side to calibrate on.")
    cosine = cosines(embedder, [p.a for p in labelled], [p.b for p in labelled])
    model = LogisticRegression(class_weight="balanced").fit(cosine.reshape(-1, 1), [p.label for p in labelled])
    return float(model.coef_[0][0]), float(model.intercept_[0])


def cosines(embedder: Embedder, questions: list[str], readings: list[str]) -> np.ndarray:
    """The cosine of each (question, reading), each distinct text embedded once."""
    asked = list(dict.fromkeys(questions))
    read = list(dict.fromkeys(readings))
    q = dict(zip(asked, embedder.embed_queries(asked), strict=True))
    r = dict(zip(read, embedder.embed_documents([document_text(t) for t in read]), strict=True))
    return np.asarray([float(q[a] @ r[b]) for a, b in zip(questions, readings, strict=True)], dtype=np.float32)
