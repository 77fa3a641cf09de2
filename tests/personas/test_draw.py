"""Generated dialogues for the load: options, corrections, distractors, and the drawer
(independent, reproducible draws from the same strategies)."""

from __future__ import annotations

import collections

import pytest
import yaml
from hypothesis import given, settings

from personas import build_script
from personas.draw import DialogueDrawer
from personas.dump import dump_yaml
from personas.strategies import VARIANTS, DialoguePlan, GenOptions, dialogue_plans, kind_of


@settings(max_examples=150)
@given(dialogue_plans(corrections=True, distractors=True))
def test_corrections_and_distractors_make_valid_scripts_whose_probes_ask_the_newest_value(plan: DialoguePlan) -> None:
    script = plan.to_script()
    assert build_script(yaml.safe_load(dump_yaml(script)), script.source) == script
    assert DialoguePlan.from_json(plan.to_json()) == plan
    by_kind: dict[str, list[str]] = collections.defaultdict(list)
    for name, value in plan.values.items():
        by_kind[kind_of(name)].append(value)
    assert all(len(values) == len(set(values)) for values in by_kind.values())  # no two facts of a kind alike
    newest: dict[str, str] = {}
    for turn, op in zip(script.turns, plan.ops):
        if op.kind == "correct":
            newest[kind_of(op.facts[0])] = op.facts[0]
        if op.kind == "distract":
            assert op.facts[0].startswith("other_") and not turn.expect
        for name in turn.expect:
            assert name == newest.get(kind_of(name), kind_of(name))
    for make in VARIANTS.values():  # every variant of such a plan is a valid script too
        make(plan).to_script()


@pytest.mark.parametrize(("options", "words"), [
    (GenOptions(min_turns=1), "turns 1-12"),
    (GenOptions(min_turns=6, max_turns=4), "turns 6-4"),
    (GenOptions(max_turns=41), "turns 2-41"),
    (GenOptions(max_turns=3, probe_distance=(5, 6)), "probe distance 5"),
    (GenOptions(probe_distance=(4, 2)), "probe distance 4-2"),
    (GenOptions(probe_distance=(2, 3), corrections=True), "corrections and a fixed probe distance"),
    (GenOptions(language="fr"), "language 'fr'"),
])
def test_impossible_options_are_one_line_naming_the_option(options: GenOptions, words: str) -> None:
    problem = options.problem()
    assert problem is not None and words in problem and "\n" not in problem
    with pytest.raises(ValueError, match=words.split()[0]):
        DialogueDrawer(options)


def test_the_same_seed_draws_the_same_dialogues_and_another_seed_others() -> None:
    first = [DialogueDrawer(GenOptions(), seed=7).draw() for _ in range(1)]
    a, b, c = DialogueDrawer(GenOptions(), seed=7), DialogueDrawer(GenOptions(), seed=7), DialogueDrawer(GenOptions(), seed=8)
    drawn_a = [a.draw() for _ in range(200)]
    assert drawn_a == [b.draw() for _ in range(200)]
    assert drawn_a[0] == first[0]
    assert sum(x != y for x, y in zip(drawn_a, (c.draw() for _ in range(200)))) > 180
    assert [p.name for p in drawn_a[:2]] == ["gen-000001", "gen-000002"]


def test_draws_are_spread_like_independent_samples_not_a_search() -> None:
    """Hypothesis's runner starts from the simplest dialogue and mutates: through @given, 40%
    of 1,000 draws were one two-turn dialogue. Independent draws spread over the lengths."""
    drawer = DialogueDrawer(GenOptions(min_turns=2, max_turns=12), seed=1)
    plans = [drawer.draw() for _ in range(1000)]
    lengths = collections.Counter(len(p.ops) for p in plans)
    assert set(lengths) == set(range(2, 13))
    assert max(lengths.values()) < 2.5 * 1000 / 11  # no length far above its even share
    distinct = {repr((p.language, p.values, p.ops)) for p in plans}
    assert len(distinct) > 900
    assert {p.language for p in plans} == {"en", "zh"}


@pytest.mark.parametrize("options", [
    GenOptions(language="zh", min_turns=4, max_turns=6),
    GenOptions(language="en", max_turns=10, probe_distance=(3, 5), distractors=True),
    GenOptions(corrections=True, distractors=True, min_turns=8, max_turns=8),
    GenOptions(min_turns=10, max_turns=12, probe_distance=(1, 1)),  # a near probe in a long dialogue
    GenOptions(min_turns=6, max_turns=12, probe_distance=(2, 4)),
])
def test_drawn_dialogues_keep_their_options(options: GenOptions) -> None:
    drawer = DialogueDrawer(options, seed=3)
    for _ in range(200):
        plan = drawer.draw()
        script = plan.to_script()
        assert options.min_turns <= len(script.turns) <= options.max_turns
        assert options.language in (None, plan.language)
        assert any(turn.expect for turn in script.turns)
        if options.probe_distance:
            low, high = options.probe_distance
            assert all(low <= d <= high for d in plan.probe_distances())
    shortest = max(options.min_turns, options.probe_distance[0] + 1 if options.probe_distance else 2)
    lengths = {len(drawer.draw().ops) for _ in range(200)}
    assert lengths == set(range(shortest, options.max_turns + 1))  # the whole range, not one end


def test_without_hypothesis_internals_the_drawer_falls_back_to_given(monkeypatch: pytest.MonkeyPatch) -> None:
    import personas.draw as draw

    monkeypatch.setattr(draw, "direct_draw", lambda: None)
    a, b = draw.DialogueDrawer(GenOptions(max_turns=6), seed=2), draw.DialogueDrawer(GenOptions(max_turns=6), seed=2)
    assert a.fallback
    plans = [a.draw() for _ in range(30)]
    assert plans == [b.draw() for _ in range(30)]
    assert all(2 <= len(p.to_script().turns) <= 6 for p in plans)
