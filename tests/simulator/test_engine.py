"""The engine end to end on real parts: reference target over loopback, real Redis."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from scoring import build_scorecard
from simulator.target import TargetConfig
from tests.simulator.drive import drive


def test_open_loop_run_records_every_slot_and_writes_state(tmp_path: Path, redis_url: str) -> None:
    turns, steps, engine = drive(tmp_path, redis_url, TargetConfig(model="m", service_ms=20, service_cv=0.2), model="m")
    assert [s["qps_target"] for s in steps] == [40.0, 80.0]
    for step in steps:
        served = [t for t in turns if t["step"] == step["step"]]
        assert len(served) + step["unserved"] == step["slots"] == int(step["qps_target"] * 1.5)
    assert all(t["status"] == "ok" for t in turns)
    assert all(t["t_sched"] <= t["t_sent"] <= t["t_first"] <= t["t_done"] for t in turns)
    assert sum(s["store"]["writes"] for s in steps) == sum(1 for t in turns if t["store"] == "ok")
    # each session's versions go 1, 2, 3... in turn order: no write lost or doubled
    versions: dict[str, list[int]] = defaultdict(list)
    for t in sorted(turns, key=lambda t: (t["session"], t["turn"])):
        versions[t["session"]].append(t["version"])
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())
    # every slot of the measured window is counted once, warm-up slots never
    card = build_scorecard(tmp_path / "records.jsonl", {"run_id": "x", "config": {"seed": 0}})
    for scored in card["steps"]:
        assert scored["turns"] + scored["unserved_slots"] == round(scored["qps_target"] * (1.5 - 0.3))


def test_replicas_share_facts_and_probes_carry_expected_values(tmp_path: Path, redis_url: str) -> None:
    turns, _, _ = drive(tmp_path, redis_url, TargetConfig(model="m", service_ms=5), model="m", qps=(120.0,),
                        duration_s=2.0)
    by_group: dict[str, set[str]] = defaultdict(set)
    for t in turns:
        if t["turn"] == 0:
            by_group[t["group"]].add(t["user"])
    assert by_group and all(len(texts) == 1 for texts in by_group.values())
    assert len({next(iter(v)) for v in by_group.values()}) > 1  # different sessions, different facts
    probes = [t for t in turns if t["expect"]]
    assert probes
    recalled = sum(all(v in t["text"] for v in t["expect"].values()) for t in probes)
    assert recalled == len(probes)  # the reference target remembers what it was told


def test_forgetful_target_shows_up_in_the_records(tmp_path: Path, redis_url: str) -> None:
    turns, _, _ = drive(tmp_path, redis_url, TargetConfig(model="m", service_ms=5, history_window=2),
                        model="m", qps=(120.0,), duration_s=2.0)
    probes = [t for t in turns if t["expect"]]
    missed = sum(not all(v in t["text"] for v in t["expect"].values()) for t in probes)
    assert probes and missed > 0


def test_failing_target_is_measured_not_fatal(tmp_path: Path, redis_url: str) -> None:
    target = TargetConfig(model="m", service_ms=5, error_rate=0.2, reset_rate=0.1, hang_rate=0.05, garbage_rate=0.1)
    turns, steps, _ = drive(tmp_path, redis_url, target, model="m", timeout_s=0.4)
    classes = Counter(t["status"] for t in turns)
    assert classes["ok"] > 0
    assert classes["http_5xx"] > 0 and classes["connect"] > 0 and classes["timeout"] > 0 and classes["protocol"] > 0
    assert all(t["t_done"] - t["t_sent"] < 400 + 300 for t in turns if t["status"] == "timeout")
    card = build_scorecard(tmp_path / "records.jsonl", {"run_id": "x", "config": {"seed": 0}})
    for step in card["steps"]:
        failed = step["turns"] - step["ok"]
        assert sum(step["errors"]["by_class"].values()) == failed
        low, high = step["errors"]["ci95"]
        assert low <= step["errors"]["rate"] <= high


def test_session_cap_turns_slots_into_unserved(tmp_path: Path, redis_url: str) -> None:
    turns, steps, _ = drive(tmp_path, redis_url, TargetConfig(model="m", service_ms=300, service_cv=0),
                            model="m", qps=(100.0,), duration_s=1.0, warmup_s=0.0, max_sessions=6, replicas=3)
    assert steps[0]["unserved"] > 0
    assert steps[0]["sessions"]["live_max"] <= 6
    assert len(turns) + steps[0]["unserved"] == steps[0]["slots"]
