"""The store against a real Redis server (started by the session fixture)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.crc import key_slot

from session_store import (
    CorruptState,
    RedisSessionStore,
    SessionNotFound,
    SessionState,
    StateRegressed,
    StoreUnavailable,
    VersionConflict,
    redact_url,
)
from tests.conftest import run


def new_store(url: str, ttl: float | None = 60.0) -> RedisSessionStore:
    return RedisSessionStore.from_url(url, run_id=uuid.uuid4().hex[:8], ttl_s=ttl)


def state(sid: str = "s1", **kw: object) -> SessionState:
    return SessionState(id=sid, run_id="r", persona="p", facts={"order": "48213"}, **kw)  # type: ignore[arg-type]


def test_create_then_load_round_trips(redis_url: str) -> None:
    async def go() -> None:
        store = new_store(redis_url)
        await store.ping()
        s = state(messages=[{"role": "user", "content": "订单号是48213"}])
        assert await store.create(s) == 1
        loaded = await store.load("s1")
        assert loaded.messages == s.messages and loaded.facts == {"order": "48213"}
        assert loaded.version == 1 and loaded.updated_at_ms > 0
        with pytest.raises(VersionConflict) as info:
            await store.create(state())
        assert info.value.current == 1
        await store.aclose()

    run(go())


def test_stale_version_is_rejected_with_current_version(redis_url: str) -> None:
    async def go() -> None:
        store = new_store(redis_url)
        s = state()
        await store.create(s)
        await store.compare_and_set(s, 1)
        stale = state()
        with pytest.raises(VersionConflict) as info:
            await store.compare_and_set(stale, 1)
        assert info.value.current == 2
        assert store.stats.conflicts == 1 and store.stats.writes == 2
        await store.aclose()

    run(go())


def test_ttl_is_set_refreshed_and_can_be_off(redis_url: str) -> None:
    async def go() -> None:
        store = new_store(redis_url, ttl=100.0)
        s = state()
        await store.create(s)
        assert 90_000 < await store.ttl_ms("s1") <= 100_000
        # Time passes: run the clock down in Redis itself (no sleeping, so no dependence on
        # how busy the machine is), then each write must set the TTL back up to 100 s.
        await store._redis.pexpire(store.key("s1"), 5_000)
        assert 0 < await store.ttl_ms("s1") <= 5_000
        await store.compare_and_set(s, 1)
        assert 90_000 < await store.ttl_ms("s1") <= 100_000  # refreshed by compare-and-set
        await store._redis.pexpire(store.key("s1"), 5_000)
        await store.update("s1", lambda st: st.messages.append({"role": "user", "content": "again"}))
        assert 90_000 < await store.ttl_ms("s1") <= 100_000  # refreshed by update (load + CAS)
        assert (await store.load("s1")).version == 3
        # a load alone does not keep a session alive
        await store._redis.pexpire(store.key("s1"), 5_000)
        await store.load("s1")
        assert await store.ttl_ms("s1") <= 5_000
        forever = new_store(redis_url, ttl=None)
        f = state("forever")
        await forever.create(f)
        assert await forever.ttl_ms("forever") == -1
        await forever._redis.pexpire(forever.key("forever"), 5_000)  # a TTL someone else set ...
        await forever.compare_and_set(f, 1)
        assert await forever.ttl_ms("forever") == -1  # ... is cleared by a write without TTL
        await store.aclose()
        await forever.aclose()

    run(go())


def test_expired_session_is_counted_and_not_written(redis_url: str) -> None:
    async def go() -> None:
        store = new_store(redis_url, ttl=0.05)
        s = state()
        await store.create(s)
        await asyncio.sleep(0.2)
        with pytest.raises(SessionNotFound):
            await store.compare_and_set(s, s.version)
        with pytest.raises(SessionNotFound):
            await store.load("s1")
        assert store.stats.expired == 1 and store.stats.writes == 1
        await store.aclose()

    run(go())


def test_concurrent_updates_lose_nothing(redis_url: str) -> None:
    async def go() -> None:
        store = new_store(redis_url)
        await store.create(state(messages=[]))

        def add(s: SessionState) -> None:
            s.messages.append({"n": len(s.messages)})

        await asyncio.gather(*(store.update("s1", add, retries=200, backoff_s=0.0005) for _ in range(40)))
        final = await store.load("s1")
        assert final.version == 41
        assert [m["n"] for m in final.messages] == list(range(40))
        assert store.stats.conflicts == store.stats.retries
        await store.aclose()

    run(go())


def test_regressed_version_is_reported(redis_url: str) -> None:
    async def go() -> None:
        store = new_store(redis_url)
        s = state()
        await store.create(s)
        await store.compare_and_set(s, 1)
        await store.load("s1")
        # as if Redis came back from a snapshot taken before the last write
        await store._redis.hset(store.key("s1"), mapping={"v": 1, "d": state().to_bytes(), "u": 0})
        with pytest.raises(StateRegressed):
            await store.load("s1")
        assert store.stats.lost_updates == 1
        await store.aclose()

    run(go())


def test_corrupt_state_names_its_key(redis_url: str) -> None:
    async def go() -> None:
        store = new_store(redis_url)
        await store._redis.hset(store.key("bad"), mapping={"v": 1, "d": b"\x00not json", "u": 0})
        with pytest.raises(CorruptState) as info:
            await store.load("bad")
        assert store.key("bad") in str(info.value)
        await store.aclose()

    run(go())


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes: the part between the first '{' and the next '}' when it
    is not empty, else the whole key."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1 : end] if start >= 0 and end > start + 1 else key


def test_keys_are_run_scoped_and_cluster_safe(redis_url: str) -> None:
    store = RedisSessionStore.from_url("redis://localhost:6379", run_id="run7")
    key = store.key("g000001-r2")
    assert key == "convsim:run7:{g000001-r2}"
    assert RedisSessionStore.from_url("redis://localhost:6379", run_id="run8").key("g000001-r2") != key

    # Every key the store really writes for one session hashes, by its tag, to that
    # session's slot (and sessions whose ids hash apart are in different slots): a
    # multi-key step on one session never spans two Redis Cluster nodes.
    async def go() -> dict[str, list[str]]:
        live = new_store(redis_url)
        sessions = ("g000001-r0", "g000001-r1", "g000002-r0")
        for sid in sessions:
            s = state(sid)
            await live.create(s)
            await live.compare_and_set(s, 1)
            await live.update(sid, lambda st: st.messages.append({"role": "user", "content": "x"}))
        written = [k.decode() async for k in live._redis.scan_iter(match=f"convsim:{live._run_id}:*")]
        await live.aclose()
        return {sid: [k for k in written if sid in k] for sid in sessions} | {"all": written}

    keys = run(go())
    assert sorted(keys.pop("all")) == sorted(k for ks in keys.values() for k in ks)  # nothing else was left
    slots = set()
    for sid, session_keys in keys.items():
        assert session_keys, sid
        for k in session_keys:
            assert hash_tag(k) == sid, k
            assert key_slot(k.encode()) == key_slot(sid.encode()), k
        slots.add(key_slot(session_keys[0].encode()))
    assert len(slots) == len({key_slot(sid.encode()) for sid in keys})


def test_unreachable_redis_is_a_clear_error_without_password() -> None:
    async def go() -> None:
        store = RedisSessionStore.from_url("redis://user:s3cret@127.0.0.1:1/0", run_id="x")
        with pytest.raises(StoreUnavailable) as info:
            await store.ping()
        assert "s3cret" not in str(info.value) and "***" in str(info.value)
        await store.aclose()

    run(go())


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("rediss://alice:pw@cache:6380/1") == "rediss://***@cache:6380/1"
    assert redact_url("unix:///tmp/r.sock?password=pw&db=0") == "unix:///tmp/r.sock?password=***&db=0"
    assert redact_url("unix:///tmp/r.sock") == "unix:///tmp/r.sock"
