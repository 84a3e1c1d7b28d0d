"""The same-fact model: the probability that two paragraphs report the same fact, from the evidence between
them (jobs/evidence.py), and the decision the job takes on each pair: a copy, a rewrite, or not the same
reporting.

The model is a logistic regression over the standardised evidence features, stored as plain JSON (the
features' names, means and scales, the weights, and where they were fitted) in ``jobs/models``; it is fitted
by ``python -m benchmarks.fit_same_fact`` on training data only (ECB+ as provided, MRPC train, STS-B train,
Reuters-21578 stories outside the syndication benchmark).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jobs.config import ConfigError, MatchConfig
from jobs.evidence import CONFLICTS, FEATURES, LENGTH_RATIO, WORDING

MODEL_DIR = Path(__file__).resolve().parent / "models"
# NOT_SAME: the model's probability is under match.min_probability; VETOED: conflicting numbers or weekdays
# (or the pair verifier) rule the pair out whatever the model says.
NOT_SAME, COPY, REWRITE, VETOED = 0, 1, 2, 3
LINK_NAMES = {COPY: "copy", REWRITE: "rewrite"}


@dataclass(frozen=True)
class SameFactModel:
    """A fitted logistic regression over FEATURES: P(same fact) = sigmoid(w . (x - mean) / scale + b), and
    the probability from which a pair is the same fact (``cut``, picked on held-out training pairs)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: float
    cut: float
    about: dict[str, Any] = field(default_factory=dict)  # how and on what it was fitted

    @classmethod
    def load(cls, model: str | Path) -> SameFactModel:
        """A shipped model by name (``jobs/models/<name>.json``) or a model file."""
        path = Path(model)
        if not path.is_file():
            path = MODEL_DIR / f"{model}.json"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in MODEL_DIR.glob("*.json"))) or "none"
            raise ConfigError(
                f"same-fact model {str(model)!r} not found: set match.model to a model file or a shipped "
                f"model ({known})"
            )
        spec = json.loads(path.read_text(encoding="utf-8"))
        if tuple(spec["features"]) != FEATURES:
            raise ConfigError(
                f"same-fact model {path} reads the features {spec['features']}, not this version's "
                f"{list(FEATURES)}: refit it (python -m benchmarks.fit_same_fact)"
            )
        return cls(
            np.array(spec["mean"]),
            np.array(spec["scale"]),
            np.array(spec["weights"]),
            float(spec["intercept"]),
            float(spec["cut"]),
            spec.get("about", {}),
        )

    def save(self, path: Path) -> None:
        spec = {
            "features": list(FEATURES),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "intercept": self.intercept,
            "cut": self.cut,
            "about": self.about,
        }
        path.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")

    def probability(self, features: np.ndarray) -> np.ndarray:
        """P(same fact) of each row of ``features`` (columns as FEATURES)."""
        z = ((features - self.mean) / self.scale) @ self.weights + self.intercept
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def decide(
    features: np.ndarray,
    probability: np.ndarray,
    same_article: np.ndarray,
    config: MatchConfig,
    min_probability: float,
) -> np.ndarray:
    """COPY, REWRITE or NOT_SAME for each pair.

    A copy shares most of its wording (``config.copy_wording`` of the shorter one's character 5-grams, at a
    length ratio of ``config.copy_length_ratio`` or more); a rewrite is judged the same fact by the model
    (``min_probability``: match.min_probability, or the model's cut), and only across articles: an article restating itself is not reporting
    shared with anyone. Numbers or weekdays that conflict make a pair NOT_SAME whatever its wording:
    "Nikkei rose 120 on Tuesday" and "Nikkei fell 80 on Thursday" are sister facts in the same words: VETOED.
    """
    conflict = (features[:, list(CONFLICTS)] > 0).any(axis=1)
    copy = (features[:, WORDING] >= config.copy_wording) & (
        features[:, LENGTH_RATIO] >= config.copy_length_ratio
    )
    rewrite = (probability >= min_probability) & ~same_article
    return np.where(conflict, VETOED, np.where(copy, COPY, np.where(rewrite, REWRITE, NOT_SAME))).astype(
        np.int8
    )
