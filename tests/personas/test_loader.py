"""Persona files: the format, precise errors, fact drawing."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personas import PersonaError, builtin_personas, load_personas, render
from personas.pattern import generate

GOOD = """\
id: travel-zh
language: zh
profile: chat
system: 你是一个旅行助手。
facts:
  name:  {pool: [李雷, 韩梅梅]}
  order: {pattern: "[0-9]{5}"}
  city:  {value: 杭州}
turns:
  - user: 你好，我叫{name}，订单号是{order}，下周去{city}。
  - user: 帮我推荐三家酒店。
  - user: 我的订单号是多少？
    expect: [order]
think_time: {mean_s: 2}
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_issue_example_loads(tmp_path: Path) -> None:
    [script] = load_personas(write(tmp_path, GOOD))
    assert script.id == "travel-zh" and script.language == "zh" and script.think_time_s == 2.0
    assert [t.expect for t in script.turns] == [(), (), ("order",)]
    facts = script.draw_facts(random.Random(3))
    assert facts["city"] == "杭州" and facts["name"] in ("李雷", "韩梅梅") and re.fullmatch(r"[0-9]{5}", facts["order"])
    assert facts["order"] in script.render(0, facts)


def test_facts_are_the_same_for_one_seed_and_vary_across_draws(tmp_path: Path) -> None:
    [script] = load_personas(write(tmp_path, GOOD))
    assert script.draw_facts(random.Random(1)) == script.draw_facts(random.Random(1))
    rng = random.Random(1)
    assert len({script.draw_facts(rng)["order"] for _ in range(20)}) > 10


@pytest.mark.parametrize(
    "change, line, where, words",
    [
        (("{city}。", "{town}。"), 10, "turns[0].user", "unknown fact {town}"),
        (("expect: [order]", "expect: [orders]"), 13, "turns[2].expect", "unknown fact 'orders'"),
        (('pattern: "[0-9]{5}"', 'pattern: "(a|b)+"'), 7, "facts.order.pattern", "bad pattern"),
        (("language: zh", "language: fr"), 2, "language", "expected one of zh, en"),
        (("profile: chat", "profile: voice"), 3, "profile", "chat, autoglm"),
        (("think_time: {mean_s: 2}", "think_time: {mean_s: -1}"), 14, "think_time", ">= 0"),
        (("city:  {value: 杭州}", "city:  {value: 杭州, corrects: town}"), 8, "facts.city.corrects", "defined above"),
        (("city:  {value: 杭州}", "city:  {value: 杭州, aliases: Hangzhou}"), 8, "facts.city.aliases", "list of strings"),
    ],
)
def test_errors_name_file_line_field_and_fix(tmp_path: Path, change: tuple[str, str], line: int, where: str, words: str) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(PersonaError) as info:
        load_personas(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: {where}: "), message
    assert words in message


def test_probe_before_the_fact_is_planted(tmp_path: Path) -> None:
    text = GOOD.replace("  - user: 你好，我叫{name}，订单号是{order}，下周去{city}。\n", "  - user: 你好。\n")
    with pytest.raises(PersonaError, match=r"turns\[2\]\.expect: probe of 'order' before any turn states it"):
        load_personas(write(tmp_path, text))


def test_empty_turns_duplicate_ids_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(PersonaError, match="non-empty list of turns"):
        load_personas(write(tmp_path, "id: a\nturns: []\n"))
    folder = tmp_path / "dir"
    folder.mkdir()
    write(folder, GOOD, "a.yaml")
    write(folder, GOOD, "b.yaml")
    with pytest.raises(PersonaError, match="duplicate id 'travel-zh'"):
        load_personas(folder)
    with pytest.raises(PersonaError, match=r"bad.yaml:3: invalid YAML"):
        load_personas(write(tmp_path, "id: a\nturns: [\n", "bad.yaml"))


def test_json_files_and_folders_load(tmp_path: Path) -> None:
    write(tmp_path, '{"id": "j", "turns": [{"user": "hello"}]}', "j.json")
    write(tmp_path, GOOD, "y.yaml")
    assert sorted(s.id for s in load_personas(tmp_path)) == ["j", "travel-zh"]


def test_builtin_library_is_valid_and_bilingual() -> None:
    scripts = builtin_personas()
    assert len(scripts) >= 4 and {s.language for s in scripts} == {"zh", "en"}
    assert all(any(t.expect for t in s.turns) for s in scripts)
    assert load_personas("builtin") == scripts


def test_braces_escape() -> None:
    assert render('{{"app": "{name}"}}', {"name": "Maps"}) == '{"app": "Maps"}'


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.sampled_from(["[0-9]", "[A-Z]", "\\d", "x", "-", "[a-c]"]), st.integers(0, 3), st.integers(0, 3)),
        min_size=1, max_size=6,
    ),
    st.integers(0, 2**32),
)
def test_generated_values_match_their_pattern(atoms: list[tuple[str, int, int]], seed: int) -> None:
    pattern = "".join(f"{a}{{{min(lo, hi)},{max(lo, hi)}}}" for a, lo, hi in atoms)
    value = generate(pattern, random.Random(seed))
    assert re.fullmatch(pattern, value)


def test_a_corrected_fact_cannot_be_probed_after_its_correction(tmp_path: Path) -> None:
    text = GOOD.replace("  city:  {value: 杭州}", "  city:  {value: 杭州}\n  order2: {pattern: \"[0-9]{5}\", corrects: order}")
    text = text.replace("  - user: 帮我推荐三家酒店。", "  - user: 不对，订单号是{order2}。")
    with pytest.raises(PersonaError) as info:
        load_personas(write(tmp_path, text))
    assert "turns[2].expect: 'order' was corrected by 'order2'" in str(info.value)
    [script] = load_personas(write(tmp_path, text.replace("expect: [order]", "expect: [order2]")))
    assert script.probe_plan()[2] == (("order2", 1, ("order",)),)
    assert script.facts["city"].aliases == {} and script.header()["facts"]["order2"]["corrects"] == "order"


def test_a_probe_in_the_turn_that_states_its_fact_is_an_error(tmp_path: Path) -> None:
    # A probe is answered from earlier turns; the same turn would give the answer away
    # (and has no distance to report).
    text = GOOD.replace("  - user: 帮我推荐三家酒店。", "  - user: 订单号是{order}，对吗？\n    expect: [order]")
    text = text.replace("  - user: 你好，我叫{name}，订单号是{order}，下周去{city}。", "  - user: 你好，我叫{name}，下周去{city}。")
    with pytest.raises(PersonaError) as info:
        load_personas(write(tmp_path, text))
    assert "turns[1].expect: probe of 'order' before any turn states it" in str(info.value)
