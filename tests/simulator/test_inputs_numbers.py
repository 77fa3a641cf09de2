"""Bad numbers and URLs on the command line: one line, exit 2, in under 2 s, nothing written.

click's FloatRange lets nan and inf through (every comparison with nan is false); these are
the cases of issue 12 that gave tracebacks, a run of zero records, a 3 s step that ran 25 s,
or a full-length run that could never start a session.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from simulator.engine import config as defaults
from tests.simulator.test_cli import assert_one_line_error, convsim

FAST_S = 2.0


def quick(*args: str, env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = convsim(*args, env=env, timeout=30)
    return time.perf_counter() - started, result


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--duration", "nan"], ["--duration", "'nan' is not a finite number"]),
        (["--duration", "inf"], ["--duration", "not a finite number"]),
        (["--duration", "1e12"], ["--duration", "the most this option takes"]),
        (["--warmup", "nan"], ["--warmup", "not a finite number"]),
        (["--think-time", "inf"], ["--think-time", "'inf' is not a finite number"]),
        (["--think-time", "-1"], ["--think-time"]),
        (["--timeout", "nan"], ["--timeout", "not a finite number"]),
        (["--timeout", "1e300"], ["--timeout", "the most this option takes"]),
        (["--session-ttl", "inf"], ["--session-ttl", "not a finite number"]),
        (["--qps", "nan"], ["--qps", "positive rate", "finite number"]),
        (["--qps", "50,inf"], ["--qps", "positive rate", "finite number"]),
        (["--qps", "1e9"], ["--qps", "more than one convsim process can offer", "at most 10,000",
                            "give a lower rate"]),
        (["--resolution", "nan"], ["--resolution", "not a finite number"]),
        (["--max-cv", "nan"], ["--max-cv", "not a finite number"]),
        (["--max-p95", "inf"], ["--max-p95", "not a finite number"]),
        (["--min-ocs", "nan"], ["--min-ocs", "not a finite number"]),
        (["--ocs-threshold", "nan"], ["--ocs-threshold", "not a finite number"]),
        (["--replicas", "1000000"], ["no session can ever start", "--replicas 1000000",
                                     "the live-session bound (20,000)"]),
        (["--replicas", "5", "--max-sessions", "4"], ["no session can ever start", "--replicas 5",
                                                      "--max-sessions 4"]),
        (["--replicas", "150", "--qps", "1", "--think-time", "0"], ["no session can ever start",
                                                                    "idle-session cap 100"]),
        (["--max-sessions", "10000000"], ["--max-sessions"]),
        (["--concurrency", "100000"], ["--concurrency 100000", "at most 20,000"]),
        (["--redis-url", "redis://[::1"], ["--redis-url", "not a valid URL", "redis://localhost:6379/0"]),
        (["--redis-url", "http://localhost:6379"], ["--redis-url", "expected redis://"]),
        (["--redis-url", "redis://localhost:99999/0"], ["--redis-url", "Port out of range"]),
        (["--redis-url", "redis://localhost:6379/zero"], ["--redis-url", "must be a number"]),
        (["--redis-url", "unix://"], ["--redis-url", "socket's path"]),
        (["--screenshot", "100000x100000"], ["--screenshot", "at most 8192 pixels a side"]),
    ],
)
def test_bad_numbers_are_one_line_and_exit_2(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    elapsed, result = quick("run", *args, "--out", str(tmp_path / "out"))
    assert_one_line_error(result, *needles)
    assert elapsed < FAST_S, f"{elapsed:.2f} s"
    assert not (tmp_path / "out").exists()


def test_a_password_in_a_bad_redis_url_is_not_repeated(tmp_path: Path) -> None:
    _, result = quick("run", "--redis-url", "redis://:hunter2@[::1", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "--redis-url")
    assert "hunter2" not in result.stderr + result.stdout


def test_nan_from_the_environment_too(tmp_path: Path) -> None:
    _, result = quick("run", "--out", str(tmp_path / "o"), env={"CONVSIM_DURATION": "nan"})
    assert_one_line_error(result, "--duration", "not a finite number")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["check", "--target", "http://127.0.0.1:1/v1", "--timeout", "nan"], "--timeout"),
        (["bench", "--duration", "inf"], "--duration"),
        (["bench", "--rates", "1e9"], "--rates"),
        (["bench", "--concurrency", "1000000"], "--concurrency"),
        (["bench", "--workers", "1,0"], "--workers"),
        (["run", "--workers", "two"], "--workers"),
        (["target", "--error-rate", "nan"], "--error-rate"),
        (["target", "--service-ms", "inf"], "--service-ms"),
        (["target", "--hang-rate", "2"], "--hang-rate"),
        (["target", "--service-ms", "-5"], "--service-ms"),
        (["target", "--port", "99999"], "--port"),
    ],
)
def test_other_commands_check_their_numbers(args: list[str], needle: str) -> None:
    elapsed, result = quick(*args)
    assert_one_line_error(result, needle)
    assert elapsed < FAST_S, f"{elapsed:.2f} s"


def test_report_checks_gate_numbers(tmp_path: Path) -> None:
    _, result = quick("report", str(tmp_path), "--min-ocs", "nan")
    assert_one_line_error(result, "--min-ocs", "not a finite number")


def test_redis_url_check_accepts_the_usual_forms() -> None:
    for url in ("redis://localhost:6379/0", "redis://[::1]:6379", "rediss://user:pw@host:6380/2",
                "unix:///tmp/redis.sock?db=1&password=x", "redis://h"):
        assert defaults.check_redis_url(url) == url
    with pytest.raises(ValueError, match="Invalid IPv6 URL"):
        defaults.check_redis_url("redis://[::1")


def test_no_session_can_start_follows_the_caps() -> None:
    assert defaults.no_session_can_start(defaults.RunConfig(replicas=3)) is None
    assert "--max-sessions 2" in (defaults.no_session_can_start(defaults.RunConfig(replicas=3, max_sessions=2)) or "")
    # closed loop (--concurrency) has no idle cap: only the live bound counts
    assert defaults.no_session_can_start(defaults.RunConfig(qps=(1.0,), think_time_s=0, replicas=150,
                                                            concurrency=(4,))) is None
    assert defaults.no_session_can_start(defaults.RunConfig(replicas=20_001, concurrency=(4,))) is not None


def test_the_rate_bound_is_in_the_parser() -> None:
    assert defaults.parse_qps(f"1,{defaults.MAX_QPS:g}") == (1.0, defaults.MAX_QPS)
    with pytest.raises(ValueError, match="more than one convsim process can offer"):
        defaults.parse_qps(str(defaults.MAX_QPS * 1.01))
