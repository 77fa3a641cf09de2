"""A judge's measured error rates, and OCS corrected for them.

A judge that calls a same-meaning pair different (false difference) pulls OCS down; one
that misses a real difference pushes it up. Measured on labelled pairs (`calibration`),
the two rates give the Rogan-Gladen estimate of the true share of same-meaning pairs:

    true = (observed + specificity - 1) / (sensitivity + specificity - 1)

with sensitivity = 1 - false-difference rate and specificity = 1 - miss rate. Its
interval resamples the step's replica groups and draws both rates from their Beta
posteriors, so it carries the calibration's uncertainty as well as the step's. The
correction assumes the run's differences are like the calibration set's; with a weak
judge (sensitivity + specificity - 1 below `MIN_YOUDEN`) it is not made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from scoring.stats import BOOTSTRAP_SAMPLES

MIN_YOUDEN = 0.2
MIN_LENGTH_RATIO = 0.25  # a one-word answer and a paragraph embed apart whatever they mean


def comparable_length(a: str, b: str) -> bool:
    """Whether a low cosine between two texts can mean a difference in meaning."""
    shorter, longer = sorted((len(a), len(b)))
    return longer > 0 and shorter / longer >= MIN_LENGTH_RATIO


@dataclass(frozen=True)
class Thresholds:
    """Cosines where the embedding is confident: at or above `same`, the pair means the
    same; below `different`, it does not; between, the pair is undecided."""

    different: float
    same: float

    def verdict(self, cosine: float, a: str, b: str) -> bool | None:
        """True (same) or False (different) where the cosine of texts `a` and `b` is
        confident, else None (undecided)."""
        if cosine >= self.same:
            return True
        if cosine < self.different and comparable_length(a, b):
            return False
        return None


@dataclass(frozen=True)
class JudgeRates:
    """Counts from labelled pairs: same-meaning pairs and how many were called different,
    different-meaning pairs and how many were missed, and the pairs left undecided."""

    same_pairs: int
    false_differences: int
    different_pairs: int
    misses: int
    undecided: int = 0
    source: str = ""

    @property
    def false_difference_rate(self) -> float:
        return self.false_differences / self.same_pairs if self.same_pairs else 0.0

    @property
    def miss_rate(self) -> float:
        return self.misses / self.different_pairs if self.different_pairs else 0.0

    def __add__(self, other: JudgeRates) -> JudgeRates:
        return JudgeRates(self.same_pairs + other.same_pairs, self.false_differences + other.false_differences,
                          self.different_pairs + other.different_pairs, self.misses + other.misses,
                          self.undecided + other.undecided, self.source or other.source)

    def as_dict(self) -> dict[str, Any]:
        return {"false_difference_rate": round(self.false_difference_rate, 4), "miss_rate": round(self.miss_rate, 4),
                "same_pairs": self.same_pairs, "different_pairs": self.different_pairs,
                "undecided": self.undecided, "source": self.source}


def rogan_gladen(same: Sequence[float], totals: Sequence[float], rates: JudgeRates, seed: int = 0,
                 samples: int = BOOTSTRAP_SAMPLES) -> dict[str, Any] | None:
    """OCS corrected for the judge's error rates, with a 95% interval; None when the judge
    is too weak to correct for or nothing was measured."""
    num = np.asarray(same, dtype=float)
    den = np.asarray(totals, dtype=float)
    if not num.size or den.sum() <= 0 or not rates.same_pairs or not rates.different_pairs:
        return None
    sensitivity = 1 - rates.false_difference_rate
    specificity = 1 - rates.miss_rate
    youden = sensitivity + specificity - 1
    if youden < MIN_YOUDEN:
        return None
    observed = num.sum() / den.sum()
    point = float(np.clip((observed + specificity - 1) / youden, 0.0, 1.0))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, num.size, size=(samples, num.size))
    observed_draws = num[picks].sum(1) / np.maximum(den[picks].sum(1), 1e-12)
    sens_draws = rng.beta(rates.same_pairs - rates.false_differences + 1, rates.false_differences + 1, samples)
    spec_draws = rng.beta(rates.different_pairs - rates.misses + 1, rates.misses + 1, samples)
    youden_draws = np.maximum(sens_draws + spec_draws - 1, 1e-6)
    corrected = np.clip((observed_draws + spec_draws - 1) / youden_draws, 0.0, 1.0)
    low, high = np.percentile(corrected, [2.5, 97.5])
    return {"value": round(point, 6), "ci95": [round(float(min(low, point)), 4), round(float(max(high, point)), 4)]}
