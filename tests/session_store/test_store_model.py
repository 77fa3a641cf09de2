"""A Hypothesis state machine: the store against a model, through races, expiry and restarts.

After every step the model and a real Redis server must agree on every session: its
version and payload, that it is absent, or that its stored version regressed below one the
store had already seen (which the store must report, not hide).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from session_store import (
    EmbeddedRedis,
    RedisSessionStore,
    SessionNotFound,
    SessionState,
    StateRegressed,
    VersionConflict,
)

SIDS = st.sampled_from(["a", "b", "c"])
NOTES = st.text(alphabet="xyz订单", max_size=4)
SERVER: EmbeddedRedis | None = None


def server() -> EmbeddedRedis:
    global SERVER
    if SERVER is None:
        SERVER = EmbeddedRedis().start()
    return SERVER


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store = RedisSessionStore.from_url(server().url, run_id=uuid.uuid4().hex[:8], ttl_s=None,
                                                unavailable_after_s=10)
        self.model: dict[str, tuple[int, dict[str, str]]] = {}
        self.seen: dict[str, int] = {}

    def teardown(self) -> None:
        self.loop.run_until_complete(self.store.aclose())
        self.loop.close()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def state(self, sid: str, note: str) -> SessionState:
        return SessionState(id=sid, run_id="r", persona="p", facts={"note": note})

    def wrote(self, sid: str, version: int, note: str) -> None:
        self.model[sid] = (version, {"note": note})
        self.seen[sid] = max(self.seen.get(sid, 0), version)

    @rule(sid=SIDS, note=NOTES)
    def create(self, sid: str, note: str) -> None:
        if sid in self.model:
            with pytest.raises(VersionConflict) as info:
                self.run(self.store.create(self.state(sid, note)))
            assert info.value.current == self.model[sid][0]
        else:
            assert self.run(self.store.create(self.state(sid, note))) == 1
            self.wrote(sid, 1, note)

    @rule(sid=SIDS, note=NOTES)
    def write_current(self, sid: str, note: str) -> None:
        if sid not in self.model:
            with pytest.raises(SessionNotFound):
                self.run(self.store.compare_and_set(self.state(sid, note), 3))
            return
        version = self.model[sid][0]
        assert self.run(self.store.compare_and_set(self.state(sid, note), version)) == version + 1
        self.wrote(sid, version + 1, note)

    @rule(sid=SIDS, note=NOTES, lag=st.integers(1, 3))
    def write_stale(self, sid: str, note: str, lag: int) -> None:
        if sid not in self.model:
            return
        version = self.model[sid][0]
        with pytest.raises(VersionConflict) as info:
            self.run(self.store.compare_and_set(self.state(sid, note), max(0, version - lag)))
        assert info.value.current == version

    @rule(sid=SIDS, writers=st.integers(2, 6))
    def race(self, sid: str, writers: int) -> None:
        """Several writers hold the same version; exactly one may win."""
        if sid not in self.model:
            return
        version = self.model[sid][0]

        async def attempt(i: int) -> tuple[int, str] | None:
            try:
                return await self.store.compare_and_set(self.state(sid, f"w{i}"), version), f"w{i}"
            except VersionConflict:
                return None

        async def together() -> list[tuple[int, str] | None]:
            return list(await asyncio.gather(*(attempt(i) for i in range(writers))))

        outcomes = [o for o in self.run(together()) if o]
        assert len(outcomes) == 1 and outcomes[0][0] == version + 1
        self.wrote(sid, version + 1, outcomes[0][1])

    @rule(sid=SIDS)
    def expire(self, sid: str) -> None:
        self.run(self.store._redis.pexpire(self.store.key(sid), 1))
        self.run(asyncio.sleep(0.003))
        self.model.pop(sid, None)

    @rule()
    def restart(self) -> None:
        server().restart()
        self.model.clear()

    @invariant()
    def model_and_redis_agree(self) -> None:
        for sid in ("a", "b", "c"):
            if sid not in self.model:
                with pytest.raises(SessionNotFound):
                    self.run(self.store.load(sid))
                continue
            version, facts = self.model[sid]
            if version < self.seen.get(sid, 0):
                with pytest.raises(StateRegressed):
                    self.run(self.store.load(sid))
                continue
            loaded = self.run(self.store.load(sid))
            assert (loaded.version, loaded.facts) == (version, facts)


StoreMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestStoreMachine = StoreMachine.TestCase


def teardown_module() -> None:
    if SERVER is not None:
        SERVER.stop()
