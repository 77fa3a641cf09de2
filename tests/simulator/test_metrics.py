"""The Prometheus endpoint answers while a run goes on, and says what the records say."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.simulator.test_cli import CONVSIM

pytestmark = pytest.mark.slow


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


def value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_answer_during_the_run_and_count_what_was_recorded(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*CONVSIM, "run", "--qps", "30,60", "--duration", "3", "--warmup", "0.5", "--no-breaker",
                             "--run-id", "watched", "--metrics-port", str(port), "--out", str(tmp_path / "run")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            text = scrape(port)
            if text and "convsim_turns_total" in text:
                seen.append(text)
            time.sleep(0.3)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (0, 1), err[-2000:]
    assert len(seen) >= 5, "the endpoint answered while the run went on"
    last = seen[-1]
    records = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    turns = [r for r in records if r["kind"] == "turn"]
    recorded_step0 = sum(1 for t in turns if t["step"] == 0 and t["status"] == "ok")
    assert value(last, "convsim_turns_total", run="watched", step="0", status="ok") == recorded_step0
    ok0 = value(last, "convsim_turn_latency_seconds_count", run="watched", step="0")
    assert ok0 == recorded_step0  # every ok turn observed once in the latency histogram
    rates = [value(text, "convsim_achieved_rate", run="watched", step="1") for text in seen]
    assert any(50 <= r <= 70 for r in rates), rates  # the second step's rate, while it ran
    assert 'convsim_store_errors_total{class="timeout"' in last or "convsim_store_errors_total{" in last
