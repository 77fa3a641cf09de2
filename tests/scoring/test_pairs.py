"""The OCS judge on pairs of answers, outside a run: answers written the way chat models
write them (openers, markdown, reordered sentences, other number forms), in English and
Chinese, with the default embedder."""

from __future__ import annotations

from scoring import PairVerdict, judge_answers

SAME = [
    ("Your order 48213 will arrive on Friday.", "Sure! **Order 48213** is scheduled to arrive this Friday."),
    ("The table is booked for 4 people at 7 pm.", "Done - I've reserved a table for four at 19:00."),
    ("您的订单48213将在周五送达。", "好的！订单 48213 预计本周五送到。"),
    ("已为您预订明晚七点的四人桌。", "四人桌已订好，时间是明晚7点。"),
]
DIFFERENT = [
    ("Your order 48213 will arrive on Friday.", "Your order 48213 will arrive on Monday."),
    ("The table is booked for 4 people at 7 pm.", "The table is booked for 6 people at 7 pm."),
    ("您的订单48213将在周五送达。", "您的订单48213将在周一送达。"),
    ("已为您预订明晚七点的四人桌。", "已为您预订明晚九点的四人桌。"),
]


def test_reworded_answers_are_never_called_different_and_changed_facts_always_are() -> None:
    verdicts = judge_answers(SAME + DIFFERENT)
    same, different = verdicts[:len(SAME)], verdicts[len(SAME):]
    # A rewording is same or undecided (the embedding is confident only on near-copies;
    # a scorecard counts undecided as same and says how many, or a strong judge settles it)
    assert all(v.same is not False for v in same), same
    assert all(v.same is False for v in different), different
    assert {v.layer for v in different} == {"claims"}  # a changed fact needs no model to be seen


def test_identical_text_after_normalization_needs_no_model() -> None:
    class NoEmbedder:
        name = "none"

        def encode(self, texts: list[str]) -> None:
            raise AssertionError("no pair here needs an embedding")

    pairs = [("Your order ships Friday.", "**Your order ships  Friday.**"), ("See you at 7 PM", "see you at 19:00")]
    verdicts = judge_answers(pairs, embedder=NoEmbedder())  # type: ignore[arg-type]
    assert verdicts == [PairVerdict(True, "text"), PairVerdict(True, "text")]


def test_a_strong_judge_settles_only_what_the_cheaper_layers_left_open() -> None:
    asked: list[tuple[str, str]] = []

    class Judge:
        name = "stub"

        def judge(self, pairs: list[tuple[str, str]]) -> list[bool | None]:
            asked.extend(pairs)
            return [True] * len(pairs)

    verdicts = judge_answers(SAME + DIFFERENT, judge=Judge())  # type: ignore[arg-type]
    assert all(v.layer != "undecided" for v in verdicts)
    assert len(asked) == sum(v.layer == "judge" for v in verdicts)
    assert all(v.same is False for v in verdicts[len(SAME):])  # claims decided before the judge was asked
