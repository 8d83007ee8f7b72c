"""The calibration of the embedder's *answers* judgement: ``sigmoid(a·cos + b)``, fitted on the training pairs.

The cosine between a question and a sentence ranks sentences; the calibration turns it into a probability that the
sentence answers, so that the evidence threshold (``config/thresholds.yaml``, chosen on dev) reads as one. Fitted
on the answers pairs of the training side whose label is right by construction or by the local model's question
(``training.pairs``): never on an evaluation question.
"""

from __future__ import annotations

import numpy as np

from training.pairs import Pair, Vectors


def fit_calibration(vectors: Vectors, pairs: list[Pair], split: str = "train") -> tuple[float, float]:
    """``(a, b)`` of a logistic regression of the label on the cosine, over ``split``'s answers pairs (classes
    weighted alike: the pairs hold more sentences that do not answer than sentences that do)."""
    from sklearn.linear_model import LogisticRegression

    labelled = [p for p in pairs if p.task == "answers" and p.split == split]
    if len({p.label for p in labelled}) < 2:
        raise ValueError(f"No answering and non-answering pairs on the {split} side to calibrate on.")
    questions, readings = vectors.query(p.a for p in labelled), vectors.readings(p.b for p in labelled)
    cosine = np.einsum("ij,ij->i", questions, readings)
    model = LogisticRegression(class_weight="balanced").fit(cosine.reshape(-1, 1), [p.label for p in labelled])
    return float(model.coef_[0][0]), float(model.intercept_[0])
