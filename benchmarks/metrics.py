"""Scores of a clustering against ground truth, from contingency counts (never an N x N pair matrix).

Pairwise precision/recall/F1 and ARI are the NEWS-COPY metrics (Silcock et al., "Noise-Robust
De-Duplication at Scale", ICLR 2023); ARI is Hubert & Arabie (1985).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import adjusted_rand_score


@dataclass(frozen=True)
class PairScores:
    accuracy: float
    precision: float
    recall: float
    f1: float


def _pairs(counts: np.ndarray) -> int:
    return int((counts.astype(np.int64) * (counts - 1) // 2).sum())


def partition_scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """ARI and pairwise precision/recall/F1 of ``predicted`` against ``truth`` (one label per item).

    Items alone in their cluster need labels of their own (no shared "noise" label).
    """
    _, t = np.unique(np.asarray(truth, dtype=object), return_inverse=True)
    _, p = np.unique(np.asarray(predicted, dtype=object), return_inverse=True)
    joint = t.astype(np.int64) * (p.max() + 1) + p
    together = _pairs(np.unique(joint, return_counts=True)[1])
    true_pairs = _pairs(np.bincount(t))
    predicted_pairs = _pairs(np.bincount(p))
    precision = together / predicted_pairs if predicted_pairs else 1.0
    recall = together / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "ari": float(adjusted_rand_score(t, p)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def pair_scores(truth: Sequence[bool], predicted: Sequence[bool]) -> PairScores:
    """Accuracy, precision, recall and F1 of yes/no predictions for labeled pairs."""
    y, p = np.asarray(truth, dtype=bool), np.asarray(predicted, dtype=bool)
    tp = int((y & p).sum())
    precision = tp / p.sum() if p.any() else 1.0
    recall = tp / y.sum() if y.any() else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairScores(float((y == p).mean()), float(precision), float(recall), float(f1))
