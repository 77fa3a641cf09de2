"""Stream timing and throughput against the reference target, whose chunks come every
`chunk_ms` (its knob for this): the client's per-turn gaps, the records, and the
scorecard's tokens/s, TPOT and ITL.

The scorecard is checked exactly against figures recomputed from the records here; the
target's configured timing only loosely (a busy machine delays timers). The 2% check
against the target's own count and timing is `tests/benchmarks/stream_timing.py`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring import score_step
from simulator import EndpointClient
from simulator.target import TargetConfig, serving
from tests.conftest import run
from tests.simulator.drive import drive

CHUNK_MS = 8.0
TARGET = TargetConfig(model="m", service_ms=30, service_cv=0, capacity=0, chunk_ms=CHUNK_MS, chunk_chars=4)
LOOSE = 0.3  # timers on a loaded machine: generous


def test_client_keeps_the_gaps_between_chunks() -> None:
    async def go() -> Any:
        async with serving(TARGET) as url:
            client = EndpointClient(url, "m")
            try:
                return await client.complete([{"role": "user", "content": "Hello, please tell me about the weather."}])
            finally:
                await client.aclose()

    completion = run(go())
    assert completion.chunks >= 5 and completion.gaps == completion.chunks - 1
    timing = completion.timing_ms()
    assert set(timing) == {"itl_ms_mean", "itl_ms_std", "itl_ms_max"}
    assert timing["itl_ms_mean"] <= timing["itl_ms_max"]
    assert timing["itl_ms_mean"] == pytest.approx(CHUNK_MS, rel=LOOSE)
    decode_ms = (completion.t_done - completion.t_first) * 1000
    assert timing["itl_ms_mean"] * completion.gaps <= decode_ms + 0.01  # the gaps fit in the decode time


def recomputed(step: dict[str, Any], turns: list[dict[str, Any]]) -> dict[str, float]:
    """The step's figures from its records, written out again independently."""
    start, end = step["t_start"] + step["warmup_s"] * 1000, step["t_end"]
    done = [t for t in turns if t["status"] == "ok" and start <= t["t_done"] < end]
    measured = [t for t in turns if t["step"] == step["step"] and t["measured"] and t["status"] == "ok"]
    tpot = np.array([(t["t_done"] - t["t_first"]) / (t["completion_tokens"] - 1) for t in measured
                     if t["t_first"] is not None and t["completion_tokens"] >= 2])
    timed = [t for t in measured if t["itl_ms_mean"] is not None]
    gaps = np.array([t["chunks"] - 1 for t in timed])
    means = np.array([t["itl_ms_mean"] for t in timed])
    return {
        "ok_per_s": len(done) / step["window_s"],
        "output_tokens_per_s": sum(t["completion_tokens"] for t in done) / step["window_s"],
        "tpot_mean": float(tpot.mean()), "tpot_p50": float(np.median(tpot)), "tpot_p99": float(np.percentile(tpot, 99)),
        "itl_mean": float((means * gaps).sum() / gaps.sum()), "itl_p99": float(np.percentile(means, 99)),
    }


@pytest.mark.slow
def test_scorecard_figures_are_the_records_figures_and_the_targets_timing(tmp_path: Path, redis_url: str) -> None:
    turns, steps, _ = drive(tmp_path, redis_url, TARGET, model="m", qps=(20.0, 40.0), duration_s=2.5, warmup_s=0.5)
    ok = [t for t in turns if t["status"] == "ok"]
    assert ok and all(t["completion_tokens"] is not None for t in ok)
    for t in ok:  # one record per turn, the gaps as the client kept them
        assert t["chunks"] == math.ceil(len(t["text"]) / 4)
        if t["chunks"] >= 2:
            assert t["itl_ms_mean"] <= t["itl_ms_max"] and t["itl_ms_std"] >= 0
    for index, step in enumerate(steps):
        card = score_step(step, turns, index, False)
        want = recomputed(step, turns)
        throughput, tpot, itl = card["throughput"], card["tpot_ms"], card["itl_ms"]
        assert throughput["tokens_estimated"] == 0
        assert throughput["ok_per_s"] == pytest.approx(want["ok_per_s"], abs=1e-3)
        assert throughput["output_tokens_per_s"] == pytest.approx(want["output_tokens_per_s"], abs=1e-3)
        assert tpot["mean"] == pytest.approx(want["tpot_mean"], abs=1e-3)
        assert tpot["p50"] == pytest.approx(want["tpot_p50"], abs=1e-3)
        assert tpot["p99"] == pytest.approx(want["tpot_p99"], abs=1e-3)
        assert itl["mean"] == pytest.approx(want["itl_mean"], abs=1e-3)
        assert itl["p99"] == pytest.approx(want["itl_p99"], abs=1e-3)

        # against what the target was told to do, loosely: one chunk every CHUNK_MS, and the
        # turn's decode time spread over its tokens
        assert itl["mean"] == pytest.approx(CHUNK_MS, rel=LOOSE)
        measured = [t for t in ok if t["step"] == step["step"] and t["measured"] and t["completion_tokens"] >= 2]
        truth = [(t["chunks"] - 1) * CHUNK_MS / (t["completion_tokens"] - 1) for t in measured]
        assert tpot["mean"] == pytest.approx(float(np.mean(truth)), rel=LOOSE)
        assert throughput["ok_per_s"] == pytest.approx(step["qps_target"], rel=LOOSE)
        mean_tokens = throughput["output_tokens"] / throughput["ok_done"]
        assert throughput["output_tokens_per_s"] == pytest.approx(throughput["ok_per_s"] * mean_tokens, rel=1e-3)
