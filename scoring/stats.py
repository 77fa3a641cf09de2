"""Statistics with their uncertainty: summaries, Wilson intervals, clustered bootstrap."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

PERCENTILES = (50, 90, 95, 99)
BOOTSTRAP_SAMPLES = 1000
MIN_CLUSTERS = 10  # below this many clusters a bootstrap interval is marked unreliable
Z95 = 1.959963984540054


def wilson(successes: int, total: int, z: float = Z95) -> list[float]:
    """Wilson score interval for a proportion, as [low, high]; [0, 1] when total is 0."""
    if total <= 0:
        return [0.0, 1.0]
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends: no rounding dust
    high = 1.0 if successes == total else min(1.0, centre + half)
    return [low, high]


def wilson_ci(successes: int, total: int) -> list[float]:
    """The Wilson 95% interval as the scorecard writes it (6 decimals)."""
    return [round(x, 6) for x in wilson(successes, total)]


@dataclass(frozen=True)
class Summary:
    """A latency distribution in ms, with the CV and its companions."""

    count: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    cv: float
    cv_ci95: list[float] | None
    iqr_over_median: float
    mean_ci95: list[float] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "mean": self.mean, "p50": self.p50, "p90": self.p90, "p95": self.p95, "p99": self.p99,
            "max": self.max, "cv": self.cv, "cv_ci95": self.cv_ci95, "iqr_over_median": self.iqr_over_median,
            "mean_ci95": self.mean_ci95,
        }


def _r(x: float, digits: int = 3) -> float:
    return round(float(x), digits)


def cv_interval(values: np.ndarray, clusters: np.ndarray | None, rng: np.random.Generator,
                samples: int = BOOTSTRAP_SAMPLES) -> list[float] | None:
    intervals = bootstrap_intervals(values, clusters, rng, samples)
    return intervals[0] if intervals else None


def bootstrap_intervals(values: np.ndarray, clusters: np.ndarray | None, rng: np.random.Generator,
                        samples: int = BOOTSTRAP_SAMPLES) -> tuple[list[float], list[float]] | None:
    """Bootstrap 95% intervals of the CV and the mean, resampling clusters (sessions), not turns.

    Turns of one session are correlated, so the session is the resampling unit. Per
    cluster we keep n, sum and sum of squares; a resample adds those up, so each of the
    `samples` resamples costs O(clusters) numpy work, not a pass over all turns.
    """
    if values.size < 3:
        return None
    if clusters is None:
        clusters = np.arange(values.size)
    _, inverse = np.unique(clusters, return_inverse=True)
    k = int(inverse.max()) + 1
    if k < 2:
        return None
    n = np.bincount(inverse, minlength=k).astype(float)
    s1 = np.bincount(inverse, weights=values, minlength=k)
    s2 = np.bincount(inverse, weights=values * values, minlength=k)
    picks = rng.integers(0, k, size=(samples, k))
    tn, t1, t2 = n[picks].sum(1), s1[picks].sum(1), s2[picks].sum(1)
    mean = t1 / tn
    var = np.maximum(t2 / tn - mean * mean, 0.0) * tn / np.maximum(tn - 1, 1)
    cvs = np.sqrt(var) / np.where(mean > 0, mean, np.nan)
    low, high = np.nanpercentile(cvs, [2.5, 97.5])
    mean_low, mean_high = np.percentile(mean, [2.5, 97.5])
    return [_r(low, 4), _r(high, 4)], [_r(mean_low), _r(mean_high)]


def coefficient_of_variation(values: Sequence[float] | np.ndarray) -> float | None:
    """std (n-1) / mean; 0 for one value or a zero mean, None for no values."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return None
    mean = float(data.mean())
    std = float(data.std(ddof=1)) if data.size > 1 else 0.0
    return std / mean if mean > 0 else 0.0


def summarize(values: Sequence[float] | np.ndarray, clusters: Sequence[str] | np.ndarray | None = None,
              seed: int = 0) -> Summary | None:
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return None
    p50, p90, p95, p99 = np.percentile(data, PERCENTILES)
    q1, q3 = np.percentile(data, [25, 75])
    mean = float(data.mean())
    cluster_arr = None if clusters is None else np.asarray(clusters)
    intervals = bootstrap_intervals(data, cluster_arr, np.random.default_rng(seed))
    return Summary(
        count=int(data.size), mean=_r(mean), p50=_r(p50), p90=_r(p90), p95=_r(p95), p99=_r(p99),
        max=_r(data.max()), cv=_r(coefficient_of_variation(data) or 0.0, 4),
        cv_ci95=intervals[0] if intervals else None,
        iqr_over_median=_r((q3 - q1) / p50 if p50 > 0 else 0.0, 4),
        mean_ci95=intervals[1] if intervals else None,
    )


def quantiles(values: Sequence[float] | np.ndarray, keys: Sequence[str]) -> dict[str, float] | None:
    """Named figures (mean, max, pNN) of a sample, or None when it is empty."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return None
    out: dict[str, float] = {}
    for key in keys:
        if key == "mean":
            out[key] = _r(data.mean())
        elif key == "max":
            out[key] = _r(data.max())
        else:
            out[key] = _r(np.percentile(data, float(key[1:])))
    return out


def ratio_interval(numerators: Sequence[float], denominators: Sequence[float], seed: int = 0,
                   samples: int = BOOTSTRAP_SAMPLES) -> list[float] | None:
    """Bootstrap 95% interval of sum(num) / sum(den), resampling clusters (one entry each)."""
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)
    if num.size < 2 or den.sum() <= 0:
        return None
    picks = np.random.default_rng(seed).integers(0, num.size, size=(samples, num.size))
    totals = den[picks].sum(1)
    ratios = num[picks].sum(1) / np.where(totals > 0, totals, np.nan)
    low, high = np.nanpercentile(ratios, [2.5, 97.5])
    return [_r(low, 4), _r(high, 4)]


Clusters = Sequence[tuple[str, float, float]]  # (stratum, numerator, denominator) per cluster


def paired_delta(base: Clusters, other: Clusters, seed: int = 0,
                 samples: int = BOOTSTRAP_SAMPLES) -> dict[str, object] | None:
    """Difference of sum(num)/sum(den) between two steps, over strata (scripts) both share.

    Clusters (sessions or replica groups) are resampled within each stratum and step, so
    the interval keeps the pairing by script and the correlation inside a session.
    """
    strata = sorted({s for s, _, d in base if d} & {s for s, _, d in other if d})
    if not strata:
        return None
    rng = np.random.default_rng(seed)

    def draws(clusters: Clusters) -> tuple[float, np.ndarray]:
        num_total = np.zeros(samples)
        den_total = np.zeros(samples)
        point_num = point_den = 0.0
        for stratum in strata:
            num = np.array([n for s, n, d in clusters if s == stratum], dtype=float)
            den = np.array([d for s, n, d in clusters if s == stratum], dtype=float)
            point_num += num.sum()
            point_den += den.sum()
            picks = rng.integers(0, num.size, size=(samples, num.size))
            num_total += num[picks].sum(1)
            den_total += den[picks].sum(1)
        return point_num / point_den, num_total / np.where(den_total > 0, den_total, np.nan)

    base_point, base_draws = draws(base)
    other_point, other_draws = draws(other)
    low, high = np.nanpercentile(other_draws - base_draws, [2.5, 97.5])
    return {"delta": _r(other_point - base_point, 4), "ci95": [_r(low, 4), _r(high, 4)], "scripts": len(strata)}


def clustered_rate_interval(numerators: Sequence[float], denominators: Sequence[float],
                            seed: int = 0) -> tuple[list[float], bool]:
    """95% interval of sum(num) / sum(den) over clusters (replica groups), and whether it
    is reliable (at least `MIN_CLUSTERS` clusters).

    Turns of one session and replicas of one script are correlated, so the bootstrap
    resamples clusters. When every turn failed or none did, the bootstrap collapses to a
    point and the correlation cannot be measured; the interval is then Wilson's on an
    effective sample of n / sqrt(mean cluster size) turns, a design effect between
    independent turns (1) and wholly correlated clusters (the cluster size).
    """
    num = [float(x) for x, d in zip(numerators, denominators) if d > 0]
    den = [float(d) for d in denominators if d > 0]
    total, part = sum(den), sum(num)
    if not den:
        return [0.0, 1.0], False
    reliable = len(den) >= MIN_CLUSTERS
    if part == 0 or part == total or len(den) < 2:
        effective = max(1, round(total / math.sqrt(total / len(den))))
        return [round(x, 6) for x in wilson(round(part / total * effective), effective)], reliable
    interval = ratio_interval(num, den, seed)
    assert interval is not None
    return interval, reliable
