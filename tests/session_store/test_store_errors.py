"""Store errors have a class and a count; a write probe finds a read-only or full Redis
before any load; a deadline bounds every operation; the private Redis keeps to itself."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from redis.exceptions import NoScriptError, ReadOnlyError, ResponseError

from session_store import EmbeddedRedis, RedisSessionStore, SessionState, StoreUnavailable
from session_store.embedded import OWNER_FILE, sweep_stale_dirs
from session_store.errors import STORE_ERROR_CLASSES
from session_store.store import classify
from tests.conftest import free_port, run


def admin(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis(unix_socket_path=server.socket_path)


def make_read_only(server: EmbeddedRedis) -> None:
    """A real read-only replica: of a primary that is not there (it serves stale reads, refuses writes)."""
    admin(server).execute_command("REPLICAOF", "127.0.0.1", str(free_port()))


def make_full(server: EmbeddedRedis) -> None:
    """maxmemory 1mb with noeviction, and more than 1 MB already used: every write is refused."""
    client = admin(server)
    client.set("ballast", b"x" * 1_200_000)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1mb")


@pytest.mark.parametrize(("error", "kind"), [
    (ReadOnlyError("You can't write against a read only replica."), "read_only"),
    (ResponseError("ERR Error running script (call to f_0a): @user_script:14: @user_script: 14: -READONLY You "
                   "can't write against a read only replica."), "read_only"),  # how Redis 6 wraps it
    (ResponseError("OOM command not allowed when used memory > 'maxmemory'."), "out_of_memory"),
    (ResponseError("ERR Error running script (call to f_0a): @user_script:14: @user_script: 14: -OOM command not "
                   "allowed when used memory > 'maxmemory'."), "out_of_memory"),
    (ResponseError("ERR Error running script (call to f_0a): @user_script:3: user_script:3: attempt to compare "
                   "nil with number"), "script_error"),
    (NoScriptError("No matching script. Please use EVAL."), "script_error"),
    (ResponseError("NOAUTH Authentication required."), "unavailable"),
])
def test_errors_are_classified_whichever_redis_wraps_them(error: ResponseError, kind: str) -> None:
    assert classify(error) == kind


def test_stats_name_every_class_and_count_per_step() -> None:
    from session_store import StoreStats

    stats = StoreStats()
    before = stats.snapshot()
    for kind in ("read_only", "read_only", "timeout", "something new"):
        stats.count(kind)
    delta = stats.minus(before)
    assert list(delta.errors()) == list(STORE_ERROR_CLASSES)
    assert delta.errors() == {"unavailable": 1, "read_only": 2, "out_of_memory": 0, "script_error": 0, "corrupt": 0,
                              "timeout": 1}
    assert set(STORE_ERROR_CLASSES) <= set(delta.as_dict())  # the step record carries them


def test_probe_write_passes_and_leaves_no_key(redis_url: str) -> None:
    async def go() -> list[bytes | str]:
        store = RedisSessionStore.from_url(redis_url, "probe-ok")
        try:
            await store.ping()
            await store.probe_write()
            return list(await store._redis.keys("convsim:probe-ok:*"))
        finally:
            await store.aclose()

    assert run(go()) == []


@pytest.mark.parametrize(("spoil", "kind", "says"), [
    (make_read_only, "read_only", "read-only replica"),
    (make_full, "out_of_memory", "maxmemory"),
])
def test_a_read_only_or_full_redis_fails_the_probe_and_each_write_by_class(spoil, kind: str, says: str) -> None:
    async def go(server: EmbeddedRedis) -> tuple[StoreUnavailable, StoreUnavailable, dict[str, int]]:
        store = RedisSessionStore.from_url(server.url, "spoiled")
        try:
            await store.ping()
            with pytest.raises(StoreUnavailable) as probe:
                await store.probe_write()
            with pytest.raises(StoreUnavailable) as write:
                await store.create(SessionState(id="s", run_id="spoiled", persona="p"))
            return probe.value, write.value, store.stats.errors()
        finally:
            await store.aclose()

    with EmbeddedRedis() as server:
        spoil(server)
        probe, write, errors = run(go(server))
    assert probe.kind == kind and says in str(probe) and "\n" not in str(probe)
    assert write.kind == kind
    assert errors[kind] == 1 and sum(errors.values()) == 1  # the probe is preflight, not counted


def test_a_stopped_server_times_out_at_the_deadline_and_the_store_stays_consistent() -> None:
    """SIGSTOP: the operation has no answer; the deadline ends it as `timeout`. After
    SIGCONT the cut write may have landed, and the store's connections are not confused."""
    async def go(server: EmbeddedRedis) -> tuple[str, float, int, int, int]:
        store = RedisSessionStore.from_url(server.url, "stall", ttl_s=60)
        try:
            state = SessionState(id="s", run_id="stall", persona="p")
            await store.create(state)
            os.kill(server.pid, signal.SIGSTOP)  # type: ignore[arg-type]
            try:
                started = time.monotonic()
                with pytest.raises(StoreUnavailable) as info:
                    async with store.deadline(0.3):
                        await store.compare_and_set(state, 1)
                elapsed = time.monotonic() - started
            finally:
                os.kill(server.pid, signal.SIGCONT)  # type: ignore[arg-type]
            landed = (await store.load("s")).version  # 1, or 2 if the cut write landed after SIGCONT
            state.version = landed
            await store.compare_and_set(state, landed)
            again = await store.load("s")
            return info.value.kind, elapsed, landed, again.version, store.stats.timeout
        finally:
            await store.aclose()

    with EmbeddedRedis() as server:
        kind, elapsed, landed, after, timeouts = run(go(server))
    assert kind == "timeout" and 0.29 < elapsed < 1.0 and timeouts == 1
    assert landed in (1, 2) and after == landed + 1


def test_a_dead_server_is_unavailable_before_the_deadline() -> None:
    async def go(server: EmbeddedRedis) -> tuple[str, float, dict[str, int]]:
        store = RedisSessionStore.from_url(server.url, "dead", ttl_s=60)
        try:
            await store.ping()
            server.kill()
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as info:
                async with store.deadline(0.5):
                    await store.load("s")
            return info.value.kind, time.monotonic() - started, store.stats.errors()
        finally:
            await store.aclose()

    with EmbeddedRedis() as server:
        kind, elapsed, errors = run(go(server))
    assert kind == "unavailable" and elapsed < 0.5
    assert errors["unavailable"] == 1 and errors["timeout"] == 0


def test_private_redis_runs_in_its_own_session_and_leaves_no_folder() -> None:
    server = EmbeddedRedis().start()
    folder = Path(server.socket_path).parent
    assert server.pid is not None
    assert os.getsid(server.pid) == server.pid != os.getsid(0)  # the terminal's Ctrl-C does not reach it
    assert (folder / OWNER_FILE).read_text().strip() == str(os.getpid())
    server.stop()
    assert not folder.exists()
    quick = EmbeddedRedis().start()
    folder, pid = Path(quick.socket_path).parent, quick.pid
    quick.discard()  # a second Ctrl-C: no waiting, nothing left
    assert not folder.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # type: ignore[arg-type]


def test_folders_of_dead_owners_are_swept(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale, live, foreign, old, new = (tmp_path / f"convsim-redis-{name}"
                                      for name in ("stale", "live", "foreign", "old", "new"))
    for folder in (stale, live, foreign, old, new):
        folder.mkdir()
    (stale / OWNER_FILE).write_text(f"{gone.pid}\n")  # a SIGKILLed run's
    (live / OWNER_FILE).write_text(f"{os.getpid()}\n")
    (foreign / "redis.sock").write_text("")  # no owner file, not empty: not ours to judge
    os.utime(old, (time.time() - 3600, time.time() - 3600))  # empty, an hour old: left by an older convsim
    assert sweep_stale_dirs(str(tmp_path)) == 2
    assert not stale.exists() and not old.exists()
    assert live.exists() and foreign.exists() and new.exists()  # `new` may be a start in progress
