"""convsim personas list | show | validate."""

from __future__ import annotations

from pathlib import Path

from personas import builtin_personas, load_personas
from tests.simulator.test_cli import convsim


def test_list_shows_every_builtin_persona() -> None:
    result = convsim("personas", "list")
    assert result.returncode == 0
    for script in builtin_personas():
        assert script.id in result.stdout


def test_show_prints_a_file_that_loads_back(tmp_path: Path) -> None:
    result = convsim("personas", "show", "sales-report-zh")
    assert result.returncode == 0
    path = tmp_path / "copy.yaml"
    path.write_text(result.stdout, encoding="utf-8")
    [copy] = load_personas(path)
    [original] = [s for s in builtin_personas() if s.id == "sales-report-zh"]
    assert copy.turns == original.turns and copy.tools == original.tools and copy.facts == original.facts
    missing = convsim("personas", "show", "nope")
    assert missing.returncode == 2 and "no persona 'nope'" in missing.stderr


def test_generated_is_pointed_at_a_run_folder() -> None:
    for command in ("list", "show x"):
        result = convsim("personas", *command.split(), "--personas", "generated")
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
        assert "drawn while a run goes on" in result.stderr and "--personas runs/<run-id>" in result.stderr


def test_validate_reports_each_bad_file_with_its_line(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("id: g\nturns:\n  - user: hello\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: b\nfacts:\n  order: {pattern: '[0-9]{5}'}\nturns:\n  - user: what is it?\n    expect: [order]\n",
                   encoding="utf-8")
    result = convsim("personas", "validate", str(good), str(bad))
    assert result.returncode == 2
    assert "ok: " in result.stdout and "1 persona(s): g" in result.stdout
    assert f"{bad}:6: turns[0].expect: probe of 'order' before any turn states it" in result.stderr
    assert convsim("personas", "validate", str(good)).returncode == 0
