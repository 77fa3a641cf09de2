"""Scoring checked against ground truth: the reference target injects forgetting, fact
flips, paraphrases and errors at known rates; the scorecard must recover each rate.

A 95% interval misses the truth one time in twenty by design, so these tests check the
injected rate against a 99.9% interval of the same counts (and the reported 95% interval
against the replica-group bootstrap recomputed from the records): they fail for a biased
judge, not for an unlucky draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from personas import PersonaScript, build_script
from scoring import LlmJudge, build_scorecard, judge_probe, load_rules, wilson
from scoring.actions import judged_text
from scoring.records import load_records
from scoring.stats import clustered_rate_interval
from simulator.target import TargetConfig
from tests.conftest import free_port
from tests.simulator.drive import drive

Z999 = 3.2905

SCRIPTS = [
    {"id": "gt-en", "language": "en", "facts": {"order": {"pattern": "[0-9]{5}"}},
     "turns": [{"user": "Hello, my order number is {order}."}, {"user": "Tell me about hotels in town."},
               {"user": "What is my order number?", "expect": ["order"]},
               {"user": "Which order number did I give you?", "expect": ["order"]},
               {"user": "Can you confirm my order number?", "expect": ["order"]}]},
    {"id": "gt-zh", "language": "zh", "facts": {"order": {"pattern": "[0-9]{5}"}},
     "turns": [{"user": "你好，我的订单号是{order}。"}, {"user": "帮我推荐一家酒店。"},
               {"user": "我的订单号是多少？", "expect": ["order"]},
               {"user": "请问我的订单号是什么？", "expect": ["order"]}]},
]


def scripts() -> list[PersonaScript]:
    return [build_script(s, "test") for s in SCRIPTS]


def score(tmp_path: Path, redis_url: str, **knobs: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    target = TargetConfig(model="m", service_ms=5, service_cv=0.1, seed=7, **knobs)
    turns, _, _ = drive(tmp_path, redis_url, target, scripts(), model="m", qps=(150.0,), duration_s=4.0,
                        warmup_s=0.3, think_time_s=0.02, replicas=3)
    card = build_scorecard(tmp_path / "records.jsonl", {"run_id": "gt", "config": {"seed": 0}})
    return card["steps"][0], turns


def holds(rate: float, part: int, whole: int, reported: list[float] | None = None,
          by_group: dict[str, list[int]] | None = None) -> bool:
    if reported is not None:
        assert by_group is not None and sum(k for k, _ in by_group.values()) == part
        assert sum(n for _, n in by_group.values()) == whole
        expected, _ = clustered_rate_interval([k for k, _ in by_group.values()], [n for _, n in by_group.values()])
        assert reported == pytest.approx(expected, abs=1e-6)
        # Turns of a session are correlated (a failed turn is retried, replicas share their
        # bodies): widen the reported 95% interval to 99.9% as the truth check.
        low, high = reported
        widen = (Z999 / 1.96 - 1) * (high - low) / 2
        if low - widen <= rate <= high + widen:
            return True
    low, high = wilson(part, whole, z=Z999)
    return low <= rate <= high


def counts_by_group(turns: list[dict[str, Any]], counted: Any) -> dict[str, list[int]]:
    """(hits, cases) per replica group of measured turns; `counted` gives None (not a case),
    True (a hit) or False."""
    out: dict[str, list[int]] = {}
    for t in turns:
        if t["measured"]:
            hit = counted(t)
            if hit is not None:
                entry = out.setdefault(t["group"], [0, 0])
                entry[0] += bool(hit)
                entry[1] += 1
    return out


def probe_verdicts(tmp_path: Path, turns: list[dict[str, Any]]) -> Any:
    rules = load_rules(load_records(tmp_path / "records.jsonl").personas)

    def verdict(t: dict[str, Any]) -> Any:
        if not t["expect"] or t["status"] != "ok":
            return None
        return judge_probe(judged_text(t), t["expect"], t.get("stale") or {}, t["persona"], rules)
    return verdict


@pytest.mark.slow
@pytest.mark.parametrize("paraphrase", [0.0, 1.0], ids=["templated", "paraphrased"])
def test_injected_forget_and_flip_rates_are_recovered(tmp_path: Path, redis_url: str, paraphrase: float) -> None:
    forget, flip = 0.2, 0.15
    step, turns = score(tmp_path, redis_url, forget_rate=forget, flip_rate=flip, paraphrase_rate=paraphrase)
    loss = step["context_loss"]
    assert loss["probes"] > 250
    # A probe loses its fact when forgotten, or kept but flipped; a flip is the latter.
    verdict = probe_verdicts(tmp_path, turns)
    lost = counts_by_group(turns, lambda t: None if verdict(t) is None else verdict(t).is_lost)
    flipped = counts_by_group(turns, lambda t: None if verdict(t) is None else verdict(t).is_flip)
    assert holds(forget + (1 - forget) * flip, loss["lost"], loss["probes"], loss["ci95"], lost), loss
    assert holds((1 - forget) * flip, loss["flips"], loss["probes"], loss["flip_ci95"], flipped), loss

    # OCS: replicas of a probe agree when both kept the fact or both forgot it; every other
    # turn is answered alike. Expected share of differing pairs among probe pairs:
    kept = (1 - forget) * (1 - flip)
    differ = 1 - kept**2 - forget**2
    ocs = step["ocs"]
    probe_pairs = pairs_of(turns, probes=True)
    assert probe_pairs + pairs_of(turns, probes=False) == ocs["pairs"]
    expected = 1 - differ * probe_pairs / ocs["pairs"]
    low, high = ocs["ci95"]
    widen = (Z999 / 1.96 - 1) * (high - low) / 2
    assert low - widen <= expected <= high + widen, (expected, ocs)
    assert ocs["fact_flips"] == ocs["different"]  # every difference here is a fact difference


@pytest.mark.slow
def test_injected_error_rate_is_recovered(tmp_path: Path, redis_url: str) -> None:
    step, turns = score(tmp_path, redis_url, error_rate=0.08)
    errors = step["errors"]
    failed = errors["by_class"]["http_5xx"]
    assert failed == step["turns"] - step["ok"] and step["turns"] > 400
    by_group = counts_by_group(turns, lambda t: t["status"] != "ok")
    assert holds(0.08, failed, step["turns"], errors["ci95"], by_group), errors
    # A probe that got no answer is not judged; it is counted apart.
    assert step["context_loss"]["unanswered"] == sum(
        1 for t in turns if t["measured"] and t["expect"] and t["status"] != "ok") > 0


@pytest.mark.slow
def test_paraphrases_are_not_differences(tmp_path: Path, redis_url: str) -> None:
    step, turns = score(tmp_path, redis_url, paraphrase_rate=0.6)
    probe_answers = {t["text"] for t in turns if t["expect"] and t["status"] == "ok"}
    templates = {text.split("4")[0].split("5")[0][:8] for text in probe_answers}
    assert len(templates) >= 4  # the target really worded answers differently
    assert step["context_loss"]["lost"] == 0
    assert step["ocs"]["different"] == 0 and step["ocs"]["pairs"] > 250
    checks = {c["gate"]: c["status"] for c in step["verdict"]["checks"]}
    assert checks["ocs"] == checks["context_loss"] == "pass"


@pytest.mark.slow
def test_a_consistent_model_that_paraphrases_passes_ocs_at_every_step(tmp_path: Path, redis_url: str) -> None:
    """Every answer reworded (openers, markdown, lists, reordered sentences, number forms),
    never changed: OCS >= 0.92 at every step, and the gate passes."""
    target = TargetConfig(model="m", service_ms=5, service_cv=0.1, seed=11, paraphrase_rate=1.0)
    turns, _, _ = drive(tmp_path, redis_url, target, model="m", qps=(40.0, 120.0), duration_s=3.0, warmup_s=0.3,
                        think_time_s=0.02, replicas=3)
    card = build_scorecard(tmp_path / "records.jsonl", {"run_id": "gt", "config": {"seed": 0}})
    reworded = {t["text"] for t in turns if t["status"] == "ok"}
    assert any("**" in text for text in reworded) and any("\n- " in text or "\n1. " in text for text in reworded)
    assert len(card["steps"]) == 2
    for step in card["steps"]:
        ocs = step["ocs"]
        assert ocs["pairs"] > 80 and ocs["value"] >= 0.92, ocs
        checks = {c["gate"]: c["status"] for c in step["verdict"]["checks"]}
        assert checks["ocs"] == "pass", step["verdict"]

    # A strong judge that fails after the load decides nothing: OCS no longer passes outright.
    with LlmJudge(f"http://127.0.0.1:{free_port()}/v1", "judge", retries=0) as dead:
        rejudged = build_scorecard(tmp_path / "records.jsonl", {"run_id": "gt", "config": {"seed": 0}}, judge=dead)
    for before, after in zip(card["steps"], rejudged["steps"]):
        assert after["ocs"]["undecided"] == before["ocs"]["undecided"] > 0
        assert after["ocs"]["value"] == before["ocs"]["value"]
        checks = {c["gate"]: c["status"] for c in after["verdict"]["checks"]}
        assert checks["ocs"] == "alert" and after["verdict"]["status"] != "pass"
        assert any("judge again with `convsim report" in r for r in after["verdict"]["reasons"])


def pairs_of(turns: list[dict[str, Any]], probes: bool) -> int:
    """Replica pairs among measured ok answers, of probe turns or of the others."""
    counts: dict[tuple[str, int], int] = {}
    for t in turns:
        if t["measured"] and t["status"] == "ok" and bool(t["expect"]) == probes:
            key = (t["group"], t["turn"])
            counts[key] = counts.get(key, 0) + 1
    return sum(k * (k - 1) // 2 for k in counts.values())
