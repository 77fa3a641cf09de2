"""A run split across processes: `--workers N` on one host, `--segment i/N` instances meeting
in a shared Redis, and their records merged into one scorecard (`convsim report A B`).

Against the reference target with known fault rates: the merged run and a single process
agree on context loss, OCS and errors within their intervals; every dispatched turn is in
the merged records once; an instance killed mid-run is named and its steps do not pass,
while the others finish.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from session_store import EmbeddedRedis
from simulator.target import TargetConfig, TargetProcess
from tests.simulator.test_cli import CONVSIM, convsim

pytestmark = pytest.mark.slow

FAULTS = TargetConfig(service_ms=60, forget_rate=0.25, flip_rate=0.15, error_rate=0.05, seed=4)
SETTINGS = ("--qps", "40", "--duration", "8", "--warmup", "1", "--think-time", "0.2", "--replicas", "3",
            "--no-breaker", "--on-turn-error", "skip", "--seed", "9")


def turns_of(folder: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    return [r for r in records if r.get("kind") == "turn"]


def overlap(a: list[float], b: list[float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def test_two_workers_measure_what_one_process_measures_and_lose_no_turn(tmp_path: Path) -> None:
    with TargetProcess(FAULTS) as target:
        one = convsim("run", "--target", target.base_url, *SETTINGS, "--out", str(tmp_path / "one"), timeout=180)
        two = convsim("run", "--target", target.base_url, *SETTINGS, "--workers", "2", "--out", str(tmp_path / "two"),
                      timeout=180)
    assert one.returncode in (0, 1) and two.returncode in (0, 1), (one.stderr[-2000:], two.stderr[-2000:])
    a = json.loads((tmp_path / "one" / "scorecard.json").read_text())["steps"][0]
    b = json.loads((tmp_path / "two" / "scorecard.json").read_text())["steps"][0]
    assert b["segments"] == {"count": 2, "present": [0, 1], "missing": [], "late_ms": b["segments"]["late_ms"]}
    assert a["context_loss"]["probes"] > 40 and b["context_loss"]["probes"] > 40
    assert a["context_loss"]["rate"] > 0.1 and b["context_loss"]["rate"] > 0.1  # the injected forgetting shows
    assert overlap(a["context_loss"]["ci95"], b["context_loss"]["ci95"])
    assert overlap(a["ocs"]["ci95"], b["ocs"]["ci95"]) and b["ocs"]["pairs"] > 40
    assert overlap(a["errors"]["ci95"], b["errors"]["ci95"])
    assert b["qps_achieved"] == pytest.approx(40.0, rel=0.02)
    merged = turns_of(tmp_path / "two")
    keys = [(t["session"], t["turn"], t.get("retry", 0), t["t_sched"]) for t in merged]
    assert len(keys) == len(set(keys))  # no turn twice
    parts = [turns_of(tmp_path / "two" / "segments" / str(i)) for i in range(2)]
    assert len(merged) == sum(len(p) for p in parts)  # and none lost in the merge
    assert {t["session"][:3] for t in parts[0]} == {"s0-"} and {t["session"][:3] for t in parts[1]} == {"s1-"}
    step = next(json.loads(line) for line in (tmp_path / "two" / "records.jsonl").read_text().splitlines()
                if '"kind":"step"' in line)
    assert step["slots"] - step["unserved"] == len(merged)  # every dispatched slot is one turn record


def start(index: int, count: int, redis_url: str, target: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CONVSIM, "run", "--target", target, "--redis-url", redis_url, "--run-id", "split",
                             "--segment", f"{index}/{count}", "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_an_instance_killed_mid_run_is_named_and_the_others_finish(tmp_path: Path) -> None:
    settings = ("--qps", "20,30,40", "--duration", "3", "--warmup", "0.5", "--no-breaker", "--think-time", "0.2")
    with EmbeddedRedis() as redis, TargetProcess(TargetConfig(service_ms=40)) as target:
        first = start(0, 2, redis.url, target.base_url, tmp_path / "a", *settings)
        second = start(1, 2, redis.url, target.base_url, tmp_path / "b", *settings)
        deadline = time.monotonic() + 60
        records = tmp_path / "b" / "records.jsonl"
        while time.monotonic() < deadline:  # kill the second instance during the second step
            if records.exists() and '"step":1,' in records.read_text():
                break
            time.sleep(0.1)
        second.send_signal(signal.SIGKILL)
        second.communicate()
        out, err = first.communicate(timeout=90)
    assert first.returncode in (0, 1), err[-2000:]
    steps = [json.loads(line) for line in (tmp_path / "a" / "records.jsonl").read_text().splitlines()
             if '"kind":"step"' in line]
    assert [s["step"] for s in steps] == [0, 1, 2]  # the survivor ran every step
    merged = convsim("report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "merged"))
    assert merged.returncode == 1, merged.stderr[-2000:]
    card = json.loads((tmp_path / "merged" / "scorecard.json").read_text())
    assert card["steps"][0]["segments"]["missing"] == []
    for step in card["steps"][1:]:
        assert step["segments"]["missing"] == [1]
        assert step["verdict"]["status"] == "breach"
        assert any("segment 1/2" in reason and "missing" in reason for reason in step["verdict"]["reasons"])
    assert "gates: FAIL" in merged.stdout


def test_instances_with_different_settings_are_refused_before_any_load(tmp_path: Path) -> None:
    with EmbeddedRedis() as redis, TargetProcess(TargetConfig(service_ms=0)) as target:
        first = start(0, 2, redis.url, target.base_url, tmp_path / "a", "--qps", "20")
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not _plan_stored(redis.url):
                time.sleep(0.1)
            second = convsim("run", "--target", target.base_url, "--redis-url", redis.url, "--run-id", "split",
                             "--segment", "1/2", "--qps", "30", "--out", str(tmp_path / "b"))
        finally:
            first.kill()
            first.communicate()
    assert second.returncode == 2, second.stderr
    assert not (tmp_path / "b" / "records.jsonl").exists()
    assert "differ from run split's plan (different qps)" in second.stderr and "Traceback" not in second.stderr


def _plan_stored(redis_url: str) -> bool:
    code = ("import redis, sys; r = redis.Redis.from_url(sys.argv[1]); "
            "print(r.exists('convsim:{split}:run:plan'))")
    return subprocess.run([sys.executable, "-c", code, redis_url], capture_output=True, text=True).stdout.strip() == "1"


@pytest.mark.parametrize("to", ["parent", "group"])
def test_ctrl_c_stops_every_worker_once_and_scores_the_partial_run(tmp_path: Path, to: str) -> None:
    """SIGINT to the parent alone (kill -INT) or to its whole process group (a terminal's
    Ctrl-C): each worker gets one request to stop, finishes its turns in flight, and the
    merged partial run is scored as interrupted, its last step not read as convsim's limit."""
    with TargetProcess(TargetConfig(service_ms=40)) as target:
        run = subprocess.Popen([*CONVSIM, "run", "--target", target.base_url, "--qps", "40,60", "--duration", "30",
                                "--warmup", "1", "--think-time", "0.2", "--workers", "2", "--out", str(tmp_path / "o")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        parts = [tmp_path / "o" / "segments" / str(i) / "records.jsonl" for i in range(2)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(p.exists() and p.stat().st_size > 2000 for p in parts):
            time.sleep(0.1)
        time.sleep(2)  # well inside the first step's measured window
        if to == "parent":
            run.send_signal(signal.SIGINT)
        else:
            os.killpg(run.pid, signal.SIGINT)
        out, err = run.communicate(timeout=60)
    assert run.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "Ctrl-C again" in err
    info = json.loads((tmp_path / "o" / "run.json").read_text())
    assert info["workers"]["exit_codes"] == [130, 130]  # both stopped cleanly, neither killed
    step = json.loads((tmp_path / "o" / "scorecard.json").read_text())["steps"][0]
    assert step["segments"]["missing"] == [] and step["interrupted"]
    assert step["qps_target"] == 40 and step["window_s"] < 25  # cut short, not run to the end
    assert not any("convsim's limit" in r for r in step["verdict"]["reasons"]), step["verdict"]
    assert "interrupted" in out
