"""Statistics and the scorecard from records."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring import build_scorecard, summarize, wilson
from scoring.records import RECORD_VERSION
from scoring.render import WRITERS


def wilson_reference(successes: int, total: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval from its closed form, written out here independently:
    (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    p, n = successes / total, total
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


@given(st.integers(0, 500), st.integers(0, 500))
def test_wilson_matches_the_closed_form(successes: int, failures: int) -> None:
    total = successes + failures
    if total == 0:
        assert wilson(0, 0) == [0.0, 1.0]  # no data: no information
        return
    low, high = wilson(successes, total)
    ref_low, ref_high = wilson_reference(successes, total)
    assert low == pytest.approx(max(0.0, ref_low), abs=1e-9)
    assert high == pytest.approx(min(1.0, ref_high), abs=1e-9)
    assert 0.0 <= low < high <= 1.0


def test_wilson_known_values() -> None:
    # Wilson 95% intervals as the textbooks print them (4 decimals), and the same from the closed form.
    table = {(0, 10): (0.0, 0.2775), (5, 10): (0.2366, 0.7634), (10, 10): (0.7225, 1.0),
             (3, 50): (0.0206, 0.1622), (15, 50): (0.1910, 0.4375)}
    for (k, n), (low, high) in table.items():
        got = wilson(k, n)
        ref_low, ref_high = wilson_reference(k, n)
        assert round(got[0], 4) == low == round(max(0.0, ref_low), 4), (k, n, got)
        assert round(got[1], 4) == high == round(min(1.0, ref_high), 4), (k, n, got)
    # 99.9% (z = 3.2905) is wider, and still the closed form
    wide = wilson(5, 10, z=3.2905)
    assert [round(x, 4) for x in wide] == [round(x, 4) for x in wilson_reference(5, 10, z=3.2905)]
    assert wide[0] < 0.2366 and wide[1] > 0.7634
    assert wilson(0, 3)[0] == 0.0 and wilson(3, 3)[1] == 1.0  # found by Hypothesis: rounding dust at the ends


def test_wilson_covers_the_true_rate_95_percent_of_the_time() -> None:
    """Seeded binomial draws: the 95% interval covers the true p in 93-97% of them (the
    exact coverage is 95.7% for p=0.3, n=50 and 95.2% for p=0.05, n=40; the normal
    approximation would give 93.5% and 86.8%, a 90% interval about 90%)."""
    rng = np.random.default_rng(20240601)
    for p, n in ((0.3, 50), (0.05, 40)):
        draws = rng.binomial(n, p, size=2000)
        covered = sum(1 for k in draws if wilson(int(k), n)[0] <= p <= wilson(int(k), n)[1])
        assert 0.93 <= covered / len(draws) <= 0.97, (p, n, covered / len(draws))


def test_summary_matches_numpy_and_cv_interval_covers_truth() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(200, 20, size=3000)  # true CV 0.10
    sessions = np.repeat(np.arange(600), 5)
    s = summarize(values, sessions)
    assert s is not None
    assert abs(s.p99 - np.percentile(values, 99)) < 1e-3 and abs(s.mean - values.mean()) < 1e-3
    assert s.cv_ci95 is not None and s.cv_ci95[0] < 0.10 < s.cv_ci95[1]
    assert s.cv_ci95[1] - s.cv_ci95[0] < 0.01


def test_session_bootstrap_is_wider_when_sessions_differ() -> None:
    rng = np.random.default_rng(1)
    per_session = rng.normal(200, 40, size=100)  # sessions differ a lot, turns within one barely
    values = np.repeat(per_session, 10) + rng.normal(0, 2, size=1000)
    clustered = summarize(values, np.repeat(np.arange(100), 10))
    naive = summarize(values, None)
    assert clustered and naive and clustered.cv_ci95 and naive.cv_ci95
    assert clustered.cv_ci95[1] - clustered.cv_ci95[0] > 2 * (naive.cv_ci95[1] - naive.cv_ci95[0])


def turn(step: int, sched: float, status: str = "ok", latency: float = 100.0, session: str = "s") -> dict[str, Any]:
    return {"kind": "turn", "v": RECORD_VERSION, "step": step, "session": session, "t_sched": sched,
            "t_sent": sched + 1, "t_first": sched + 20, "t_done": sched + 1 + latency, "status": status}


def test_scorecard_from_records(tmp_path: Path) -> None:
    lines = [turn(0, 500.0 + i) for i in range(10)]  # warm-up: excluded
    lines += [turn(0, 1000.0 + 10 * i, session=f"s{i % 7}", latency=100 + i) for i in range(100)]
    lines += [turn(0, 2000.0 + i, status="timeout") for i in range(4)]
    lines.append({"kind": "step", "v": RECORD_VERSION, "step": 0, "qps_target": 100.0, "arrival": "constant",
                  "t_start": 0.0, "t_end": 3000.0, "warmup_s": 1.0, "window_s": 2.0, "slots": 300, "unserved": 3,
                  "unserved_measured": 2, "sessions": {"started": 7, "completed": 0, "live_max": 7},
                  "store": {"writes": 104, "conflicts": 0, "retries": 0, "lost_updates": 0, "expired": 0}})
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    card = build_scorecard(path, {"run_id": "r1", "config": {"seed": 0}})
    step = card["steps"][0]
    assert step["turns"] == 104 and step["ok"] == 100 and step["qps_achieved"] == 52.0
    assert step["errors"]["by_class"]["timeout"] == 4 and abs(step["errors"]["rate"] - 4 / 104) < 1e-6
    assert step["latency_ms"]["p50"] == 149.5 and step["unserved_slots"] == 2
    assert step["dispatch_lag_ms"]["p99"] == 1.0 and step["ttft_ms"]["p50"] == 19.0
    md = WRITERS["md"]().render(card)
    assert "| 100 QPS |" in md and "52.0" in md
    assert json.loads(WRITERS["json"]().render(card))["schema"] == "convsim.scorecard/1"
    assert "latency CV" in WRITERS["terminal"]().render(card)
