"""The autoglm figures checked against what the reference target's agent mode injected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from personas import builtin_personas
from scoring import build_scorecard, wilson
from simulator.profiles import of_profile
from simulator.target import TargetConfig
from tests.simulator.drive import drive

Z999 = 3.2905
AGENT = of_profile(builtin_personas(), "autoglm")


def score(tmp_path: Path, redis_url: str, duration: float = 4.0, **knobs: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    target = TargetConfig(model="m", service_ms=20, service_cv=0.05, seed=3, **knobs)
    turns, _, _ = drive(tmp_path, redis_url, target, AGENT, model="m", qps=(80.0,), duration_s=duration,
                        warmup_s=0.3, think_time_s=0.02, replicas=3, screenshot=(540, 1200))
    card = build_scorecard(tmp_path / "records.jsonl", {"run_id": "agent", "config": {"seed": 0}})
    return card["steps"][0], turns


def near(rate: float, part: int, whole: int) -> bool:
    low, high = wilson(part, whole, z=Z999)
    return low <= rate <= high


@pytest.mark.slow
def test_reply_format_classes_match_the_injected_rates(tmp_path: Path, redis_url: str) -> None:
    drift, trailing, bad, unknown = 0.2, 0.2, 0.1, 0.05
    step, _ = score(tmp_path, redis_url, tag_drift_rate=drift, trailing_tag_rate=trailing,
                    bad_action_rate=bad, unknown_action_rate=unknown)
    fmt = step["format"]
    n = fmt["checked"]
    assert n > 200
    clean = 1 - bad - unknown
    assert near(clean * (1 - drift), fmt["by_class"]["compliant"], n), fmt
    assert near(clean * drift, fmt["by_class"]["missing_tags"], n), fmt
    assert near(bad, fmt["by_class"]["unparseable"], n), fmt
    assert near(unknown, fmt["by_class"]["unknown_action"], n), fmt
    assert near(trailing, fmt["trailing_tag"], n), fmt
    assert fmt["ci95"] == pytest.approx(wilson(fmt["compliant"], n), abs=1e-6)


@pytest.mark.slow
def test_loops_end_sessions_and_are_counted(tmp_path: Path, redis_url: str) -> None:
    step, turns = score(tmp_path, redis_url, loop_rate=1.0)
    loops = [t for t in turns if t.get("ended") == "loop"]
    assert loops and all(t["turn"] == 2 for t in loops)  # the third identical action in a row
    measured_loops = sum(1 for t in loops if t["measured"])
    assert step["format"]["action_loops"] == measured_loops
    assert step["sessions"]["ended"].get("loop", 0) >= 1
    assert not any(t.get("ended") == "finish" for t in turns)


@pytest.mark.slow
def test_sessions_end_on_finish_and_replicas_agree(tmp_path: Path, redis_url: str) -> None:
    step, turns = score(tmp_path, redis_url)
    ended = {t.get("ended") for t in turns} - {None}
    assert ended == {"finish"}  # every task reaches its last screen and says finish
    assert step["format"]["rate"] == 1.0 and step["format"]["expected_action"]["rate"] == 1.0
    assert step["ocs"]["value"] == 1.0 and step["ocs"]["pairs"] > 100
    assert step["context_loss"]["probes"] > 20 and step["context_loss"]["lost"] == 0


@pytest.mark.slow
def test_diverging_actions_lower_ocs(tmp_path: Path, redis_url: str) -> None:
    step, _ = score(tmp_path, redis_url, loop_rate=0.4)
    ocs = step["ocs"]
    assert ocs["different"] > 0 and ocs["fact_flips"] == ocs["different"]  # decided by parsed action
    assert ocs["value"] < 0.95


@pytest.mark.slow
def test_a_forgotten_task_is_context_loss(tmp_path: Path, redis_url: str) -> None:
    step, turns = score(tmp_path, redis_url, forget_after=1)
    by_distance = {d["turns_back"]: d for d in step["context_loss"]["by_distance"]}
    far = [d for back, d in by_distance.items() if back >= 2]
    assert far and all(d["lost"] == d["checked"] > 0 for d in far)  # the task is 2+ turns back: gone
    typed = [t["reply"]["args"].get("text") for t in turns if t.get("expect") and t.get("reply", {}).get("name") == "Type"]
    assert typed and set(typed) <= {"搜索", "search"}


@pytest.mark.slow
def test_thinking_time_and_context_overflow(tmp_path: Path, redis_url: str) -> None:
    long_step, long_turns = score(tmp_path / "a", redis_url, duration=3.0, think_chars=3000)
    short_step, short_turns = score(tmp_path / "b", redis_url, duration=3.0)

    def share(turns: list[dict[str, Any]]) -> float:
        values = sorted((t["t_marker"] - t["t_sent"]) / (t["t_done"] - t["t_sent"]) for t in turns if t.get("t_marker"))
        return values[len(values) // 2]

    long, short = share(long_turns), share(short_turns)
    assert long > 0.9 and long - short > 0.15  # the marker comes later in the stream when thinking is longer
    for step in (long_step, short_step):
        thinking, ttft, total = step["thinking_ms"], step["ttft_ms"], step["latency_ms"]
        assert ttft["p50"] <= thinking["p50"] <= total["max"]

    step, turns = score(tmp_path / "c", redis_url, duration=3.0, context_tokens=1300)
    assert step["errors"]["by_class"]["context_overflow"] > 0
    overflowed = [t for t in turns if t["status"] == "context_overflow"]
    assert all(t.get("ended") == "error" for t in overflowed)
    sizes = [row["max"] for row in step["prompt_tokens"]["by_turn"]]
    assert sizes == sorted(sizes) and step["prompt_tokens"]["window"] == 25480
