"""The OCS judge on pairs of answers outside a run: do two answers to the same turn say the
same thing? The same layers a scorecard uses, in the same order: identical text (after
normalization), conflicting claims (`scoring.claims`), the embedding where its cosine is
confident (`Thresholds`), then an optional strong judge (`PairJudge`) for what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from scoring.calibration import DEFAULT_THRESHOLDS
from scoring.claims import conflict
from scoring.embed import Embedder, EmbeddingCache, load_embedder
from scoring.judges import PairJudge
from scoring.normalize import normalize
from scoring.rates import Thresholds


@dataclass(frozen=True)
class PairVerdict:
    same: bool | None  # None: no layer was confident (a scorecard counts it same, and says so)
    by: str  # text, claims, embedding, judge, undecided


def judge_answers(pairs: Sequence[tuple[str, str]], embedder: Embedder | None = None,
                  thresholds: Thresholds = DEFAULT_THRESHOLDS, judge: PairJudge | None = None) -> list[PairVerdict]:
    """One verdict per pair of answers. `embedder` defaults to the default embedder (loaded
    only if a pair needs it); a strong `judge` is asked once about every pair left open."""
    verdicts: list[PairVerdict | None] = []
    open_pairs: list[tuple[int, str, str]] = []
    for index, (raw_a, raw_b) in enumerate(pairs):
        a, b = normalize(raw_a), normalize(raw_b)
        if a == b:
            verdicts.append(PairVerdict(True, "text"))
        elif conflict(a, b):
            verdicts.append(PairVerdict(False, "claims"))
        else:
            verdicts.append(None)
            open_pairs.append((index, a, b))
    if open_pairs:
        cache = EmbeddingCache(embedder or load_embedder())
        cosines = cache.cosine([(a, b) for _, a, b in open_pairs])
        waiting = []
        for (index, a, b), cosine in zip(open_pairs, cosines):
            same = thresholds.verdict(float(cosine), a, b)
            if same is None:
                waiting.append(index)
            else:
                verdicts[index] = PairVerdict(same, "embedding")
        answers = judge.judge([pairs[i] for i in waiting]) if judge is not None and waiting else [None] * len(waiting)
        for index, same in zip(waiting, answers):
            verdicts[index] = PairVerdict(same, "judge" if same is not None else "undecided")
    return [v if v is not None else PairVerdict(None, "undecided") for v in verdicts]
