"""The context-loss judge: carried, lost or flipped, with aliases and corrections."""

from __future__ import annotations

from typing import Any

from personas import build_script
from scoring import judge_probe, load_rules

PERSONA = {
    "id": "p", "language": "en",
    "facts": {
        "name": {"pool": ["Alice Chen", "Bob Miller", "Carla Diaz"], "aliases": {"Alice Chen": ["Ms Chen", "陈爱丽"]}},
        "order": {"pattern": "[0-9]{5}"},
        "order_fixed": {"pattern": "[0-9]{5}", "corrects": "order"},
        "city": {"value": "Hangzhou", "aliases": ["杭州"]},
    },
    "turns": [
        {"user": "I am {name}, order {order}, going to {city}."},
        {"user": "Sorry, my order number is actually {order_fixed}."},
        {"user": "What is my order number?", "expect": ["order_fixed"]},
    ],
}


def rules() -> Any:
    script = build_script(PERSONA, "test")
    return load_rules({"personas": {script.id: script.header()}})


def judge(text: str, expect: dict[str, str], stale: dict[str, list[str]] | None = None) -> tuple[tuple[str, ...], ...]:
    verdict = judge_probe(text, expect, stale or {}, "p", rules())
    return verdict.carried, verdict.lost, verdict.flipped


def test_carried_in_other_forms() -> None:
    assert judge("Your order is 四八二一三.", {"order_fixed": "48213"}) == (("order_fixed",), (), ())
    assert judge("Thanks Ms Chen, see you in 杭州", {"name": "Alice Chen", "city": "Hangzhou"})[1] == ()
    assert judge("ALICE CHEN booked it", {"name": "Alice Chen"})[1] == ()


def test_lost_without_a_rival_is_not_a_flip() -> None:
    assert judge("I don't have that information.", {"order_fixed": "48213"}) == ((), ("order_fixed",), ())


def test_another_value_of_the_same_fact_is_a_flip() -> None:
    assert judge("Your order is 48231.", {"order_fixed": "48213"}) == ((), ("order_fixed",), ("order_fixed",))
    assert judge("Hello Bob Miller!", {"name": "Alice Chen"})[2] == ("name",)


def test_after_a_correction_the_old_value_is_a_flip() -> None:
    # Judged with the record's stale values: the later value must win.
    assert judge("Your order is 11111.", {"order_fixed": "48213"}, {"order_fixed": ["11111"]})[2] == ("order_fixed",)
    assert judge("It was 11111, now 48213.", {"order_fixed": "48213"}, {"order_fixed": ["11111"]})[1] == ()


def test_a_number_inside_a_longer_number_is_not_carried() -> None:
    assert judge("Reference 148213 noted.", {"order_fixed": "48213"})[1] == ("order_fixed",)


def test_the_plan_says_how_far_back_and_what_was_superseded() -> None:
    script = build_script(PERSONA, "test")
    assert script.probe_plan()[2] == (("order_fixed", 1, ("order",)),)
    import random

    for seed in range(50):
        facts = script.draw_facts(random.Random(seed))
        assert facts["order_fixed"] != facts["order"]


def test_a_digits_normalizer_ignores_separators() -> None:
    persona = {"id": "p", "facts": {"phone": {"pattern": "1[0-9]{10}", "normalize": ["digits"]}},
               "turns": [{"user": "My phone is {phone}."}, {"user": "My phone?", "expect": ["phone"]}]}
    script = build_script(persona, "test")
    found = load_rules({"personas": {"p": script.header()}})
    assert judge_probe("Call 138-1234-5678 today", {"phone": "13812345678"}, {}, "p", found).carried == ("phone",)
    assert judge_probe("Call 138 1234 5679 today", {"phone": "13812345678"}, {}, "p", found).flipped == ("phone",)
    # Without the normalizer a grouped long number still reads as the value.
    assert judge_probe("Call 138-1234-5678 today", {"phone": "13812345678"}, {}, "p", rules()).lost == ()


def test_a_value_offered_as_a_choice_is_not_carried() -> None:
    name = {"name": "Alice Chen"}
    assert judge("Was it Alice Chen or Bob Miller? I'm not certain.", name)[1] == ("name",)
    assert judge("我不确定是 Bob Miller 还是 Alice Chen。", name)[1] == ("name",)
    # Two values, one set against the other, is an answer.
    assert judge("You are Alice Chen, not Bob Miller.", name)[1] == ()


def test_a_value_said_to_be_the_first_one_is_superseded() -> None:
    stale = {"order_fixed": ["11111"]}
    assert judge("Your order is 11111; you gave 48213 at first, then changed it.", {"order_fixed": "48213"},
                 stale)[2] == ("order_fixed",)
    assert judge("Your order is 48213 (you said 11111 at first).", {"order_fixed": "48213"}, stale)[1] == ()


def test_a_hedge_between_two_codes_is_not_carried() -> None:
    assert judge("I believe it was either 48213 or 48231 - could you double-check?", {"order_fixed": "48213"})[1]
    assert judge("好像是48213，也可能是48231，您再核对一下？", {"order_fixed": "48213"})[1]


def test_a_negated_value_beside_its_rival_is_a_flip() -> None:
    assert judge("You said you don't want Alice Chen - you prefer Bob Miller.", {"name": "Alice Chen"})[2] == ("name",)


def test_a_value_said_to_be_void_is_superseded() -> None:
    stale = {"order_fixed": ["11111"]}
    assert judge("最新的订单号是48213，之前那个11111已作废。", {"order_fixed": "48213"}, stale)[1] == ()
