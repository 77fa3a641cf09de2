"""The README's "Use from Python" example runs as written and scores what it drove."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Use from Python"):]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "no python block under 'Use from Python'"
    return found.group(1)


def test_the_use_from_python_example_runs_and_writes_a_scorecard(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", python_example()], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "runs" / "from-python"
    card = json.loads((out / "scorecard.json").read_text())
    assert [s["qps_target"] for s in card["steps"]] == [20.0, 40.0]
    assert all(s["context_loss"]["probes"] > 0 for s in card["steps"])  # the probes were judged
    assert all(s["ocs"] and s["ocs"]["pairs"] > 0 for s in card["steps"])  # replicas were compared
    lines = [line for line in result.stdout.splitlines() if "/s: context loss" in line]
    assert len(lines) == 2 and lines[0].startswith("20/s") and lines[1].startswith("40/s"), result.stdout
    assert {p.name for p in out.iterdir()} >= {"records.jsonl", "scorecard.json", "scorecard.md", "report.html",
                                               "gates.xml"}
