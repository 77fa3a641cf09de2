"""Generated dialogues: valid scripts, saved and loaded back unchanged, variants that keep facts."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from personas import PersonaScript, build_script, builtin_personas
from personas.dump import dump_yaml
from personas.strategies import VARIANTS, DialoguePlan, dialogue_plans, dialogues, facts


def reloaded(script: PersonaScript) -> PersonaScript:
    return build_script(yaml.safe_load(dump_yaml(script)), script.source)


@given(dialogues())
def test_generated_dialogues_round_trip_through_yaml(script: PersonaScript) -> None:
    assert reloaded(script) == script


def test_the_builtin_library_round_trips_through_yaml() -> None:
    for script in builtin_personas():
        assert reloaded(script) == script, script.id


@given(dialogues(min_turns=3, max_turns=7))
def test_every_dialogue_probes_a_stated_fact_within_its_length(script: PersonaScript) -> None:
    assert 3 <= len(script.turns) <= 7
    plan = script.probe_plan()
    assert any(plan), "at least one probe"
    assert all(back >= 1 for turn in plan for _, back, _ in turn)


@given(st.integers(1, 8).flatmap(lambda d: st.tuples(st.just(d), dialogue_plans(probe_distance=(d, d + 2), max_turns=12))))
def test_probe_distance_is_respected(case: tuple[int, DialoguePlan]) -> None:
    low, plan = case
    distances = plan.probe_distances()
    assert distances and all(low <= d <= low + 2 for d in distances)


@given(facts(language="zh", min_size=2, max_size=3))
def test_facts_are_distinct_kinds_with_values(values: dict[str, str]) -> None:
    assert 2 <= len(values) <= 3 and all(values.values())


@settings(max_examples=60)
@given(dialogue_plans(), st.sampled_from(sorted(VARIANTS)))
def test_variants_keep_the_facts_and_the_probes(plan: DialoguePlan, name: str) -> None:
    original = plan.to_script()
    variant = VARIANTS[name](plan).to_script()
    assert {n: s.value for n, s in variant.facts.items()} == {n: s.value for n, s in original.facts.items()}
    probes = sorted(f for t in original.turns for f in t.expect)
    assert sorted(f for t in variant.turns for f in t.expect) == probes
    assert all(back >= 1 for turn in variant.probe_plan() for _, back, _ in turn)
    if name == "paraphrased":
        assert [t.user for t in variant.turns] != [t.user for t in original.turns]
    if name == "padded":
        assert len(variant.turns) > len(original.turns)
