"""N asyncio writers x M processes hammering K sessions: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from collections import Counter

from session_store import RedisSessionStore, SessionState
from tests.conftest import run

PROCESSES, WRITERS, UPDATES, SESSIONS = 3, 12, 8, 3


def hammer(url: str, run_id: str, process: int) -> list[str]:
    """One process: WRITERS coroutines, each doing UPDATES updates; returns its tokens."""

    async def go() -> list[str]:
        store = RedisSessionStore.from_url(url, run_id, ttl_s=300)
        done: list[str] = []

        async def writer(w: int) -> None:
            for i in range(UPDATES):
                token = f"p{process}-w{w}-u{i}"
                sid = f"s{(w + i) % SESSIONS}"

                def add(state: SessionState, token: str = token) -> None:
                    state.messages.append({"token": token})

                await store.update(sid, add, retries=10_000, backoff_s=0.0005)
                done.append(f"{sid}:{token}")

        try:
            await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        finally:
            await store.aclose()
        return done

    return asyncio.run(go())


def test_no_update_is_lost_or_applied_twice(redis_url: str) -> None:
    run_id = uuid.uuid4().hex[:8]

    async def setup() -> None:
        store = RedisSessionStore.from_url(redis_url, run_id, ttl_s=300)
        for k in range(SESSIONS):
            await store.create(SessionState(id=f"s{k}", run_id=run_id, persona="p"))
        await store.aclose()

    run(setup())
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = pool.starmap(hammer, [(redis_url, run_id, p) for p in range(PROCESSES)])
    applied = Counter(item.split(":")[0] for items in results for item in items)
    assert sum(applied.values()) == PROCESSES * WRITERS * UPDATES

    async def check() -> dict[str, tuple[int, list[str]]]:
        store = RedisSessionStore.from_url(redis_url, run_id, ttl_s=300)
        stored: dict[str, tuple[int, list[str]]] = {}
        for k in range(SESSIONS):
            state = await store.load(f"s{k}")
            tokens = [m["token"] for m in state.messages]
            assert state.version == 1 + applied[f"s{k}"]  # one version per successful update
            assert len(tokens) == len(set(tokens)) == applied[f"s{k}"]  # each effect exactly once
            expected = {i.split(":")[1] for items in results for i in items if i.startswith(f"s{k}:")}
            assert set(tokens) == expected
            stored[f"s{k}"] = (state.version, tokens)
        await store.aclose()
        return stored

    stored = run(check())
    # The final stored state against the workload itself (not against what the writers
    # reported): every update the test issued is in Redis exactly once, in the session it
    # was aimed at, and the versions moved on by exactly the number of increments.
    issued = {f"s{(w + i) % SESSIONS}:p{p}-w{w}-u{i}"
              for p in range(PROCESSES) for w in range(WRITERS) for i in range(UPDATES)}
    landed = [f"{sid}:{token}" for sid, (_, tokens) in stored.items() for token in tokens]
    assert len(landed) == len(set(landed)) and set(landed) == issued  # no lost update, none doubled
    assert sum(version - 1 for version, _ in stored.values()) == len(issued) == PROCESSES * WRITERS * UPDATES
