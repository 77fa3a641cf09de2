"""The built-in library: what it covers, checked from the scripts themselves."""

from __future__ import annotations

from collections import Counter

from personas import builtin_personas


def test_size_languages_and_profiles() -> None:
    scripts = builtin_personas()
    assert len(scripts) >= 24
    languages = Counter(s.language for s in scripts)
    assert languages["zh"] == languages["en"]
    autoglm = [s for s in scripts if s.profile == "autoglm"]
    assert len(autoglm) >= 6 and {s.language for s in autoglm} == {"zh", "en"}
    assert all(s.title for s in scripts)


def test_recall_is_probed_near_and_far_after_corrections_and_distractors() -> None:
    scripts = builtin_personas()
    distances = {back for s in scripts for turn in s.probe_plan() for _, back, _ in turn}
    assert min(distances) == 1 and max(distances) >= 12
    corrected = [s.id for s in scripts if any(olds for turn in s.probe_plan() for _, _, olds in turn)]
    assert len(corrected) >= 4
    # distractors: facts stated but never probed, or several facts of one shape
    with_distractors = [s.id for s in scripts
                        if set(s.facts) - {n for t in s.turns for n in t.expect} - {f.corrects for f in s.facts.values()}]
    assert len(with_distractors) >= 4


def test_sales_report_scenario_declares_and_uses_its_tools() -> None:
    sales = [s for s in builtin_personas() if s.tools]
    assert {s.language for s in sales} == {"zh", "en"}
    for script in sales:
        declared = {t["function"]["name"] for t in script.tools}  # type: ignore[index]
        used = {t.tool.name for t in script.turns if t.tool}
        assert declared == used == {"database_query", "chart_generator"}


def test_autoglm_tasks_name_their_screens_and_actions() -> None:
    for script in (s for s in builtin_personas() if s.profile == "autoglm"):
        assert all(t.screen and t.screen.get("app") and t.action for t in script.turns), script.id
        assert "Launch" in {t.action for t in script.turns} and script.turns[-1].action == "finish"
        assert any(t.expect and t.action in ("Type", "Tap", "Launch") for t in script.turns), script.id
