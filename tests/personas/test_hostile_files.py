"""Hostile persona files: refused fast, with one file:line message, never a traceback.

Issue 12: a 336-byte YAML alias bomb took 23 s and 187 MB (a 473-byte one did not finish
in 60 s); `x: &x [*x]`, 20,000-deep nesting and non-UTF-8 bytes were tracebacks; `weight:
.nan` and `think_time: {mean_s: .nan}` validated and then crashed the run.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from personas import PersonaError, load_personas
from personas.loader import MAX_DEPTH, MAX_FILE_BYTES
from tests.simulator.test_cli import assert_one_line_error, convsim

FAST_S = 2.0

# "billion laughs": 9 levels of 9 aliases each, 9**9 = 387 million strings once expanded
BOMB = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)
GOOD_TAIL = "turns:\n  - user: hello\n"

CASES = {
    "bomb.yaml": (BOMB.encode(), 2, "YAML alias *a is not allowed"),
    "loop.yaml": (b"id: x\nx: &x [*x]\n" + GOOD_TAIL.encode(), 2, "YAML alias *x is not allowed"),
    "deep-flow.yaml": (b"id: x\nturns: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", 2, "nested more than"),
    "deep-map.yaml": (b"id: x\nturns: " + b"{a: " * 20_000 + b"1" + b"}" * 20_000 + b"\n", 2, "nested more than"),
    "deep-block.yaml": (b"id: x\nturns:\n" + b"".join(b"  " * i + b"- \n" for i in range(1, 200)), MAX_DEPTH + 2,
                        "nested more than"),
    "deep.json": (b'{"id": "x",\n "turns": ' + b"[" * 20_000 + b"]" * 20_000 + b"}\n", 2, "nested more than"),
    "latin1.yaml": (b"id: x\nturns:\n  - user: caf\xe9 au lait\n", 3, "not UTF-8 (byte 0xe9"),
    "utf16.yaml": ("id: x\nturns:\n  - user: hi\n".encode("utf-16"), 1, "not UTF-8"),
    "nan-weight.yaml": (b"id: x\nweight: .nan\n" + GOOD_TAIL.encode(), 2, "weight: expected a positive number"),
    "inf-weight.yaml": (b"id: x\nweight: .inf\n" + GOOD_TAIL.encode(), 2, "weight: expected a positive number"),
    "neg-weight.yaml": (b"id: x\nweight: -2\n" + GOOD_TAIL.encode(), 2, "weight: expected a positive number"),
    "nan-think.yaml": (b"id: x\nthink_time: {mean_s: .nan}\n" + GOOD_TAIL.encode(), 2, "think_time: expected"),
    "inf-think.yaml": (b"id: x\nthink_time: {mean_s: .inf}\n" + GOOD_TAIL.encode(), 2, "think_time: expected"),
    "neg-think.yaml": (b"id: x\nthink_time: -1\n" + GOOD_TAIL.encode(), 2, "think_time: expected"),
    "nan.json": (b'{"id": "x",\n "weight": NaN, "turns": [{"user": "hi"}]}', None, "weight: expected a positive"),
    "bad-date.yaml": (b"id: x\ntitle: 2024-13-45\n" + GOOD_TAIL.encode(), 2, "invalid YAML value"),
    "python-tag.yaml": (b"id: x\ntitle: !!python/name:os.system ''\n" + GOOD_TAIL.encode(), 2, "invalid YAML value"),
    "huge.yaml": (b"id: x\n" + GOOD_TAIL.encode() + b"# " + b"x" * MAX_FILE_BYTES + b"\n", None, "larger than"),
}


def write(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(CASES[name][0])
    return path


@pytest.mark.parametrize("name", sorted(CASES))
def test_loader_refuses_with_file_and_line(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name)
    _, line, words = CASES[name]
    started = time.perf_counter()
    with pytest.raises(PersonaError) as info:
        load_personas(path)
    elapsed = time.perf_counter() - started
    message = str(info.value)
    place = f"{path}:{line}: " if line else f"{path}: "
    assert message.startswith(place), message
    assert words in message and "\n" not in message
    assert elapsed < FAST_S, f"{name}: {elapsed:.2f} s"


def test_the_bomb_is_no_bigger_than_the_issues() -> None:
    assert len(BOMB) <= 336


@pytest.mark.parametrize("name", ["bomb.yaml", "loop.yaml", "deep-flow.yaml", "deep.json", "latin1.yaml",
                                  "nan-weight.yaml", "nan-think.yaml"])
def test_run_says_one_line_and_exits_2(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name)
    started = time.perf_counter()
    result = convsim("run", "--personas", str(path), "--out", str(tmp_path / "out"), timeout=30)
    elapsed = time.perf_counter() - started
    assert_one_line_error(result, str(path), CASES[name][2])
    assert elapsed < FAST_S, f"{name}: {elapsed:.2f} s"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["bomb.yaml", "deep-map.yaml", "utf16.yaml", "inf-think.yaml"])
def test_validate_says_it_fast(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name)
    started = time.perf_counter()
    result = convsim("personas", "validate", str(path), timeout=30)
    elapsed = time.perf_counter() - started
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert CASES[name][2] in result.stderr and str(path) in result.stderr
    assert elapsed < FAST_S, f"{name}: {elapsed:.2f} s"


MANY = """\
id: many
language: fr
weight: .nan
think_time: {mean_s: -3}
facts:
  order: {pattern: "[0-9]{5}"}
  empty: {pool: []}
turns:
  - user: hi {nope}
  - user: my order?
    expect: [order]
  - user: tell me {empty}
    expect: [empty]
  - 5
"""


def test_validate_reports_every_problem_of_a_file(tmp_path: Path) -> None:
    bad = tmp_path / "many.yaml"
    bad.write_text(MANY, encoding="utf-8")
    other = tmp_path / "other.yaml"
    other.write_bytes(CASES["loop.yaml"][0])
    good = tmp_path / "good.yaml"
    good.write_text("id: g\n" + GOOD_TAIL, encoding="utf-8")
    result = convsim("personas", "validate", str(bad), str(good), str(other), timeout=30)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    expected = [
        f"{bad}:2: language: expected one of zh, en, got 'fr'",
        f"{bad}:3: weight: expected a positive number",
        f"{bad}:4: think_time: expected",
        f"{bad}:7: facts.empty.pool: expected a non-empty list",
        f"{bad}:9: turns[0].user: unknown fact {{nope}}",
        f"{bad}:11: turns[1].expect: probe of 'order' before any turn states it",
        f"{bad}:14: turns[3]: expected {{user: TEXT}}",
        f"{other}:2: YAML alias *x",
    ]
    for line in expected:
        assert line in result.stderr, (line, result.stderr)
    assert "turns[2].expect" not in result.stderr  # a broken fact is reported once, not at each use
    assert "ok: " in result.stdout and "1 persona(s): g" in result.stdout
    assert "convsim: error: 8 problems in" in result.stderr


def test_the_first_problem_leads_and_counts_the_rest(tmp_path: Path) -> None:
    bad = tmp_path / "many.yaml"
    bad.write_text(MANY, encoding="utf-8")
    with pytest.raises(PersonaError) as info:
        load_personas(bad)
    assert len(info.value.problems) == 7
    assert str(info.value).startswith(f"{bad}:2: language: ")
    assert f"(and 6 more: convsim personas validate {bad} lists them all)" in str(info.value)


def test_a_folder_reports_every_file(tmp_path: Path) -> None:
    for name in ("bomb.yaml", "latin1.yaml", "nan-weight.yaml"):
        write(tmp_path, name)
    with pytest.raises(PersonaError) as info:
        load_personas(tmp_path)
    sources = [Path(p.source).name for p in info.value.problems]
    assert sources == ["bomb.yaml", "latin1.yaml", "nan-weight.yaml"]


def test_anchors_without_aliases_and_ordinary_files_still_load(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("id: &name p\ntitle: a title\nweight: 2\nthink_time: {mean_s: 0.5}\n" + GOOD_TAIL, encoding="utf-8")
    [script] = load_personas(path)
    assert script.id == "p" and script.weight == 2.0 and script.think_time_s == 0.5
