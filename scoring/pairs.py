"""The OCS judge on pairs of answers outside a run: do two answers to the same turn say the
same thing? The scorecard's layers, in its order (`calibration.judge_pairs`): identical text
after normalization, conflicting claims (`scoring.claims`), the embedding where its cosine is
confident (`Thresholds`), then an optional strong judge (`PairJudge`) for what is left.
"""

from __future__ import annotations

from typing import Sequence

from scoring.calibration import DEFAULT_THRESHOLDS, PairVerdict, judge_pairs
from scoring.embed import Embedder, load_embedder
from scoring.judges import PairJudge
from scoring.rates import Thresholds

__all__ = ["PairVerdict", "judge_answers"]


def judge_answers(pairs: Sequence[tuple[str, str]], embedder: Embedder | None = None,
                  thresholds: Thresholds = DEFAULT_THRESHOLDS, judge: PairJudge | None = None) -> list[PairVerdict]:
    """One verdict per pair of answers: `same` (None: no layer was confident; a scorecard
    counts it same and says so) and the `layer` that decided. `embedder` defaults to the
    default one, which loads only if a pair needs it; a strong `judge` is asked once about
    every pair the cheaper layers left open."""
    return judge_pairs(pairs, embedder or load_embedder(), thresholds, judge)
