"""Redis faults during a run: read-only, out of memory, stopped past the end of a step,
killed, a run stopped while writes hang. Every dispatched turn has one record (drive checks
it), store errors are counted by class, and the scorecard fails the run with a reason."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from scoring import build_scorecard
from scoring.render import run_passed
from session_store import EmbeddedRedis
from simulator import Engine
from simulator.target import TargetConfig
from tests.conftest import free_port
from tests.simulator.drive import drive

TARGET = TargetConfig(model="m", service_ms=20)
SETTINGS: dict[str, Any] = {"model": "m", "qps": (40.0,), "duration_s": 1.5}


def admin(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis(unix_socket_path=server.socket_path)


def score(tmp_path: Path) -> dict[str, Any]:
    return build_scorecard(tmp_path / "records.jsonl", {"run_id": "r", "config": {"seed": 0}})


def failed_run(card: dict[str, Any], kind: str) -> None:
    """The scorecard fails the run because state did not persist, naming the class."""
    assert not card["gates"]["passed"] and not run_passed(card)
    reasons = [r for s in card["steps"] for r in s["verdict"]["reasons"]]
    assert any("session state did not persist" in r and kind in r for r in reasons), reasons
    checks = [c for s in card["steps"] for c in s["verdict"]["checks"] if c["gate"] == "store_failed"]
    assert checks and any(c["status"] == "fail" for c in checks)
    assert sum(s["store"]["errors"][kind] for s in card["steps"]) > 0


def at(delay: float, action: Any) -> Any:
    async def chaos(engine: Engine) -> None:
        await asyncio.sleep(delay)
        await asyncio.to_thread(action)

    return chaos


def test_read_only_replica_mid_run(tmp_path: Path) -> None:
    with EmbeddedRedis() as server:
        spoil = at(0.6, lambda: admin(server).execute_command("REPLICAOF", "127.0.0.1", str(free_port())))
        turns, steps, _ = drive(tmp_path, server.url, TARGET, chaos=spoil, **SETTINGS)
    failed = [t for t in turns if t["store"] == "error"]
    assert failed and {t["store_class"] for t in failed} == {"read_only"}
    assert all("READONLY" in t["store_error"] for t in failed)
    assert sum(s["store"]["read_only"] for s in steps) == len(failed)
    assert any(t["store"] == "ok" for t in turns)  # written before the switch
    failed_run(score(tmp_path), "read_only")


def test_out_of_memory_mid_run(tmp_path: Path) -> None:
    def fill() -> None:
        client = admin(server)
        client.set("ballast", b"x" * 1_200_000)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1mb")

    with EmbeddedRedis() as server:
        turns, steps, _ = drive(tmp_path, server.url, TARGET, chaos=at(0.6, fill), **SETTINGS)
    failed = [t for t in turns if t["store"] == "error"]
    assert failed and {t["store_class"] for t in failed} == {"out_of_memory"}
    assert sum(s["store"]["out_of_memory"] for s in steps) == len(failed)
    failed_run(score(tmp_path), "out_of_memory")


def test_redis_stopped_past_the_end_of_a_step(tmp_path: Path) -> None:
    """SIGSTOP at 0.8 s of a 1.5 s step, SIGCONT at 3.5 s: writes that hang end at the store
    deadline with a record saying so; none holds the run past the turn bound; after SIGCONT
    no session's stored version is above what its records account for."""
    run_ids: list[str] = []

    async def chaos(engine: Engine) -> None:
        run_ids.append(engine.run_id)
        await asyncio.sleep(0.8)
        os.kill(server.pid, signal.SIGSTOP)  # type: ignore[arg-type]
        try:
            await asyncio.sleep(2.7)
        finally:
            os.kill(server.pid, signal.SIGCONT)  # type: ignore[arg-type]

    with EmbeddedRedis() as server:
        started = time.monotonic()
        turns, steps, engine = drive(tmp_path, server.url, TARGET, chaos=chaos, **SETTINGS)
        elapsed = time.monotonic() - started
        time.sleep(0.2)  # writes cut off at the deadline may still land now
        client = admin(server)
        stored = {t["session"]: int(client.hget(f"convsim:{run_ids[0]}:{{{t['session']}}}", "v") or 0) for t in turns}
    timeouts = [t for t in turns if t["store"] == "error"]
    assert timeouts and {t["store_class"] for t in timeouts} == {"timeout"}
    assert all("store deadline" in t["store_error"] for t in timeouts)
    assert sum(s["store"]["timeout"] for s in steps) == len(timeouts)
    assert elapsed < 1.5 + engine._turn_bound_s() + 2.0
    landed = Counter(t["session"] for t in turns if t["store"] in ("ok", "retried"))
    maybe = Counter(t["session"] for t in turns if t["store"] in ("error", "cancelled"))
    for session, version in stored.items():
        assert landed[session] <= version <= landed[session] + maybe[session], (session, version)
    failed_run(score(tmp_path), "timeout")


def test_redis_killed_mid_run(tmp_path: Path) -> None:
    with EmbeddedRedis() as server:
        turns, steps, _ = drive(tmp_path, server.url, TARGET, chaos=at(0.8, server.kill), **SETTINGS)
    failed = [t for t in turns if t["store"] == "error"]
    assert failed and {t["store_class"] for t in failed} == {"unavailable"}
    assert sum(s["store"]["unavailable"] for s in steps) == len(failed)
    failed_run(score(tmp_path), "unavailable")


def test_a_run_stopped_while_writes_hang_records_them_cancelled(tmp_path: Path) -> None:
    """Ctrl-C while Redis is stopped: after the drain the hanging writes are cancelled, and
    each of their turns still has its record, saying the write was cut off."""
    async def chaos(engine: Engine) -> None:
        engine.store_deadline_s = 30.0  # the cancellation, not the deadline, ends the writes
        await asyncio.sleep(0.6)
        os.kill(server.pid, signal.SIGSTOP)  # type: ignore[arg-type]
        try:
            await asyncio.sleep(0.4)
            engine.stop()
            while engine._tasks:
                await asyncio.sleep(0.05)
        finally:
            os.kill(server.pid, signal.SIGCONT)  # type: ignore[arg-type]

    with EmbeddedRedis() as server:
        turns, steps, _ = drive(tmp_path, server.url, TARGET, chaos=chaos, drain_s=0.3, **SETTINGS)
    cancelled = [t for t in turns if t["store"] == "cancelled"]
    assert cancelled and all(t["status"] == "ok" and t["store_class"] == "cancelled" for t in cancelled)
    assert steps[0]["interrupted"]
    card = score(tmp_path)
    assert not card["gates"]["passed"]
    assert card["steps"][0]["store"]["failed_by_class"]["cancelled"] == len(cancelled)
