"""Metamorphic agreement from turn records: pairs, their keys, what is left out, and the
interval against a known truth."""

from __future__ import annotations

import random
from typing import Any

from scoring.facts import load_rules
from scoring.metamorphic import agreement_by_step

RULES = load_rules({"personas": {}})
FORGOT = "I'm sorry, I don't have that information from our conversation."


def session(family: str, variant: str | None, probes: list[tuple[str, bool]], step: int = 0,
            failed_at: int | None = None, replica: int = 0) -> list[dict[str, Any]]:
    """A session stating its facts in turn 0, then one probe per turn (fact, carried)."""
    group = family if variant is None else f"{family}/{variant}"
    name = f"{group}-r{replica}"
    turns: list[dict[str, Any]] = [{"kind": "turn", "session": name, "group": group, "persona": "p", "replica": replica,
                                    "turn": 0, "step": step, "measured": True, "status": "ok",
                                    "text": "Noted.", "expect": {}}]
    for index, (fact, carried) in enumerate(probes, 1):
        value = f"{index}{fact}7731"
        ok = failed_at != index
        turns.append({"kind": "turn", "session": name, "group": group, "persona": "p", "replica": replica,
                      "turn": index, "step": step, "measured": True, "status": "ok" if ok else "timeout",
                      "text": (f"Your {fact} is {value}." if carried else FORGOT) if ok else None,
                      "expect": {fact: value}})
    for t in turns:
        if variant is not None:
            t["variant"] = variant
    return turns


def test_pairs_compare_probes_by_fact_not_position_and_leave_out_what_cannot_be_compared() -> None:
    records = [
        *session("g1", None, [("order", True), ("seat", False)]),
        *session("g1", None, [("order", True), ("seat", True)], replica=1),  # a replica: not a pair
        *session("g1", "reordered", [("seat", False), ("order", True)]),  # same outcomes, other order: agrees
        *session("g1", "padded", [("order", False), ("seat", False)]),  # disagrees
        *session("g1", "paraphrased", [("order", True), ("seat", True)], failed_at=1),  # stops at turn 1: no probe
        *session("g2", None, [("order", True)], step=1),
        *session("g2", "padded", [("order", True)], step=1),
    ]
    figures = agreement_by_step(records, RULES)
    assert figures[0]["pairs"] == 2 and figures[0]["agree"] == 1 and figures[0]["incomplete"] == 1
    assert figures[0]["by_variant"]["reordered"] == {"pairs": 1, "agree": 1, "rate": 1.0}
    assert figures[0]["by_variant"]["padded"]["agree"] == 0
    assert figures[1]["rate"] == 1.0 and figures[1]["families"] == 1


def test_without_variants_there_is_nothing_to_report() -> None:
    assert agreement_by_step(session("g1", None, [("order", True)]), RULES) == {}


def test_the_interval_holds_the_truth_of_a_random_forgetter() -> None:
    """Each probe forgotten with probability p, independently: a pair over k probes agrees
    with probability (p^2 + (1-p)^2)^k."""
    p, rng = 0.3, random.Random(5)
    records: list[dict[str, Any]] = []
    truth: list[float] = []
    for family in range(150):
        facts = rng.sample(["order", "seat", "ticket"], rng.randint(1, 3))
        records += session(f"g{family}", None, [(f, rng.random() >= p) for f in facts])
        for variant in ("padded", "reordered", "paraphrased"):
            records += session(f"g{family}", variant, [(f, rng.random() >= p) for f in facts])
            truth.append((p * p + (1 - p) ** 2) ** len(facts))
    figures = agreement_by_step(records, RULES)[0]
    expected = sum(truth) / len(truth)
    assert figures["pairs"] == 450 and figures["ci_reliable"]
    low, high = figures["ci95"]
    assert low <= expected <= high and high - low < 0.2
