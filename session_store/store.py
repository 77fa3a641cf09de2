"""The Redis session store: versioned compare-and-set done inside Redis, with a TTL.

Each session is one hash ``{prefix}:{run}:{<session>}`` with fields ``v`` (version),
``d`` (payload), ``u`` (server time of the last write, ms) and ``t`` (the token of the
write that made this version). The braces are a Redis Cluster hash tag, so everything of
one session lives in one slot. A write is one Lua script call: it compares the version,
writes, bumps the version and refreshes the TTL in a single round trip, so no interleaving
of writers can lose an update.

Connections drop and servers restart. Every operation retries such failures with jittered
backoff for a bounded time (`unavailable_after_s`), then raises `StoreUnavailable`. A write
whose reply was lost may have been applied: its retry carries the same token, and the script
recognises its own write (version already bumped by this token) instead of reporting a
conflict, so a retried write is applied exactly once.

Every error an operation ends with has a class (see `session_store.errors`) and is counted
in `StoreStats` under it. A caller that must not wait on a stalled server runs its
operations under `deadline(seconds)`: retries stop before it, and an operation still
waiting for its answer when it passes raises the class ``timeout``. `probe_write` writes
and deletes a probe key before any load, so a read-only replica or a full server is found
before the first turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import random
import time
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import AsyncIterator, Awaitable, Callable, NamedTuple, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, OutOfMemoryError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from session_store.errors import (
    STORE_ERROR_CLASSES,
    CorruptState,
    SessionNotFound,
    StateRegressed,
    StoreUnavailable,
    VersionConflict,
)
from session_store.redact import redact_url
from session_store.state import SessionState

DEFAULT_TTL_S = 1800.0
DEFAULT_RETRIES = 8  # conflict retries of a write that merges (`save`, `update`)
DEFAULT_BACKOFF_S = 0.002  # the first conflict retry waits up to this; each next one up to twice as long
MAX_BACKOFF_DOUBLINGS = 10
DEFAULT_POOL_SIZE = 64
DEFAULT_UNAVAILABLE_AFTER_S = 15.0
FIRST_RECONNECT_S = 0.01  # a dropped connection is retried after this, doubling up to LAST_RECONNECT_S
LAST_RECONNECT_S = 0.5
POOL_WAIT_S = 30  # how long an operation waits for a free connection of the pool
CONNECT_TIMEOUT_S = 5
KEY_PREFIX = "convsim"
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
PROBE_TTL_MS = 60_000  # a probe key left by a crash between its write and its delete expires
T = TypeVar("T")
# When the operations of the current task must have given up (time.monotonic()), set by `deadline`.
_DEADLINE: ContextVar[float | None] = ContextVar("convsim_store_deadline", default=None)

# KEYS[1] = state key; ARGV = expected version, payload, ttl in ms (0 = no expiry), token.
# Returns {new_version, server_ms} on success (also when this token's write is already
# there: a retry of a write whose reply was lost), {-1, 0} when the key is missing but a
# version > 0 was expected, {-2, current} on a version mismatch.
CAS_SCRIPT = """
local cur = redis.call('HMGET', KEYS[1], 'v', 't', 'u')
local expected = tonumber(ARGV[1])
if cur[1] then
  local v = tonumber(cur[1])
  if v ~= expected then
    if v == expected + 1 and cur[2] == ARGV[4] then return {v, tonumber(cur[3])} end
    return {-2, v}
  end
elseif expected ~= 0 then
  return {-1, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nv = expected + 1
redis.call('HSET', KEYS[1], 'v', nv, 'd', ARGV[2], 'u', now, 't', ARGV[4])
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end
return {nv, now}
"""


class Saved(NamedTuple):
    """A write that landed: the state written (the merged one after conflicts) and how many
    conflict retries it took."""

    state: SessionState
    retries: int


@dataclass
class StoreStats:
    """Counters the scorecard reports; `snapshot` and `minus` give per-step deltas.

    `expired` counts writes that found their session gone (TTL expiry, eviction, a Redis
    restart); `lost_updates` counts stored versions found below one already seen;
    `reconnects` counts operations retried after a dropped connection. Operations that
    failed are counted by class (STORE_ERROR_CLASSES): `unavailable` (given up after
    `unavailable_after_s` or the caller's deadline, or an error of no other class),
    `read_only`, `out_of_memory`, `script_error`, `corrupt` and `timeout`; `errors()` gives
    them as one dict.
    """

    writes: int = 0
    conflicts: int = 0
    retries: int = 0
    lost_updates: int = 0
    expired: int = 0
    reconnects: int = 0
    unavailable: int = 0
    corrupt: int = 0
    read_only: int = 0
    out_of_memory: int = 0
    script_error: int = 0
    timeout: int = 0

    def snapshot(self) -> "StoreStats":
        return StoreStats(**self.as_dict())

    def minus(self, earlier: "StoreStats") -> "StoreStats":
        return StoreStats(**{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def errors(self) -> dict[str, int]:
        """Failed operations by class, every class named."""
        return {name: getattr(self, name) for name in STORE_ERROR_CLASSES}

    def count(self, kind: str) -> None:
        """One more failed operation of class `kind` (unknown classes count as unavailable)."""
        name = kind if kind in STORE_ERROR_CLASSES else "unavailable"
        setattr(self, name, getattr(self, name) + 1)


class RedisSessionStore:
    def __init__(
        self,
        client: aioredis.Redis,
        run_id: str,
        ttl_s: float | None = DEFAULT_TTL_S,
        prefix: str = KEY_PREFIX,
        url_for_errors: str = "redis",
        unavailable_after_s: float = DEFAULT_UNAVAILABLE_AFTER_S,
    ) -> None:
        self._redis = client
        self._run_id = run_id
        self._ttl_ms = 0 if ttl_s is None else max(1, int(ttl_s * 1000))
        self._prefix = prefix
        self._where = url_for_errors
        self._unavailable_after_s = unavailable_after_s
        self._cas: AsyncScript = client.register_script(CAS_SCRIPT)  # EVALSHA, loaded again after a flush
        self._seen: dict[str, int] = {}
        self._tokens = itertools.count()
        self._token_prefix = f"{os.getpid():x}.{random.getrandbits(32):x}."
        self.stats = StoreStats()

    @classmethod
    def from_url(cls, url: str, run_id: str, ttl_s: float | None = DEFAULT_TTL_S,
                 pool_size: int = DEFAULT_POOL_SIZE,
                 unavailable_after_s: float = DEFAULT_UNAVAILABLE_AFTER_S) -> "RedisSessionStore":
        """redis://, rediss:// (TLS) or unix:// URL, with user and password if the server wants them."""
        try:
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=pool_size, timeout=POOL_WAIT_S, socket_connect_timeout=CONNECT_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0),  # retries are ours: bounded, with backoff, idempotent
            )
        except (ValueError, RedisError) as exc:
            raise StoreUnavailable(f"bad Redis URL {redact_url(url)}: {_clean(exc, url)}") from None
        return cls(aioredis.Redis(connection_pool=pool), run_id, ttl_s, url_for_errors=redact_url(url),
                   unavailable_after_s=unavailable_after_s)

    def key(self, session_id: str) -> str:
        return f"{self._prefix}:{self._run_id}:{{{session_id}}}"

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis operation, retrying dropped connections for a bounded time (and
        never past the caller's `deadline`); any other error is raised with its class."""
        deadline: float | None = None
        delay = FIRST_RECONNECT_S
        while True:
            try:
                return await operation()
            except _TRANSIENT as exc:
                now = time.monotonic()
                deadline = deadline or now + self._unavailable_after_s
                caller = _DEADLINE.get()
                if now >= deadline or (caller is not None and now + delay >= caller):
                    self.stats.count("unavailable")
                    waited = f"{self._unavailable_after_s:g} s" if now >= deadline else "until the store deadline"
                    raise StoreUnavailable(f"Redis at {self._where} unavailable for {waited}: {_clean(exc)}") from None
                self.stats.reconnects += 1
                await asyncio.sleep(min(delay, deadline - now) * random.uniform(0.5, 1.0))
                delay = min(delay * 2, LAST_RECONNECT_S)
            except RedisError as exc:  # the server answered with an error (NoScriptError included)
                kind = classify(exc)
                self.stats.count(kind)
                raise StoreUnavailable(f"Redis at {self._where}: {_clean(exc)}", kind) from None

    @contextlib.asynccontextmanager
    async def deadline(self, seconds: float) -> AsyncIterator[None]:
        """Operations inside end within `seconds`: a server that keeps refusing connections
        raises class ``unavailable`` before the deadline; one that holds an operation
        unanswered past it (stopped, stalled, a pool with no free connection) raises
        ``timeout``. A write cut off this way may still land when the server wakes up."""
        token = _DEADLINE.set(time.monotonic() + seconds)
        timer = asyncio.timeout(seconds)
        try:
            async with timer:
                yield
        except TimeoutError:
            if not timer.expired():
                raise
            self.stats.count("timeout")
            raise StoreUnavailable(f"Redis at {self._where}: no answer within the {seconds:g} s store deadline "
                                   "(a write cut off may still land)", "timeout") from None
        finally:
            _DEADLINE.reset(token)

    async def ping(self) -> None:
        """Check the server answers and load the script; raises StoreUnavailable at once."""
        try:
            await self._redis.ping()
            await self._redis.script_load(CAS_SCRIPT)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis at {self._where} is not reachable: {_clean(exc)}") from None

    async def probe_write(self) -> None:
        """Write a probe key through the compare-and-set script and delete it, before any
        load: a read-only replica, a server at maxmemory with noeviction or a user without
        write rights raises StoreUnavailable (with its class) at once, with what to do."""
        key = f"{self._prefix}:{self._run_id}:probe:{{{self._token_prefix}}}"
        try:
            await self._cas(keys=[key], args=[0, b"probe", PROBE_TTL_MS, f"{self._token_prefix}probe"])
            await self._redis.delete(key)
        except RedisError as exc:
            kind = classify(exc)
            hint = {
                "read_only": "it is a read-only replica; give the URL of the primary",
                "out_of_memory": "it is full (maxmemory reached, eviction policy noeviction); free memory, raise "
                                 "maxmemory or set a volatile-* maxmemory-policy",
            }.get(kind, "session state could not be written there")
            raise StoreUnavailable(f"Redis at {self._where} refused a test write: {hint} ({_clean(exc)})",
                                   kind) from None
        except OSError as exc:
            raise StoreUnavailable(f"Redis at {self._where} is not reachable: {_clean(exc)}") from None

    async def aclose(self) -> None:
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()  # a pool we made is ours to close

    async def create(self, state: SessionState) -> int:
        """Write a new session; VersionConflict if it exists already."""
        return await self.compare_and_set(state, 0)

    async def compare_and_set(self, state: SessionState, expected_version: int) -> int:
        """Write `state` if the stored version is `expected_version`; return the new version."""
        key = self.key(state.id)
        payload = state.to_bytes()
        token = f"{self._token_prefix}{next(self._tokens)}"
        result = await self._call(lambda: self._cas(keys=[key], args=[expected_version, payload, self._ttl_ms, token]))
        new_version, stamp = int(result[0]), int(result[1])
        if new_version == -1:
            self.stats.expired += 1
            raise SessionNotFound(state.id)
        if new_version == -2:
            self.stats.conflicts += 1
            if stamp < expected_version:
                self.stats.lost_updates += 1
            raise VersionConflict(state.id, expected_version, stamp)
        self.stats.writes += 1
        self._seen[state.id] = max(new_version, self._seen.get(state.id, 0))
        state.version, state.updated_at_ms = new_version, stamp
        return new_version

    async def load(self, session_id: str) -> SessionState:
        key = self.key(session_id)
        # Only versions seen before this read was sent must be visible to it: a write that
        # completes while the read is in flight may or may not be, and is no regression.
        floor = self._seen.get(session_id, 0)
        version, payload, stamp = await self._call(lambda: self._redis.hmget(key, ["v", "d", "u"]))
        if version is None or payload is None:
            raise SessionNotFound(session_id)
        try:
            data = payload.encode() if isinstance(payload, str) else payload
            state = SessionState.from_bytes(data, int(version), int(stamp or 0))
        except (ValueError, KeyError, TypeError) as exc:
            self.stats.count("corrupt")
            raise CorruptState(key, str(exc)) from None
        if state.version < floor:
            self.stats.lost_updates += 1
            raise StateRegressed(session_id, floor, state.version)
        self._seen[session_id] = max(state.version, self._seen.get(session_id, 0))
        return state

    async def save(
        self,
        state: SessionState,
        expected: int,
        merge: Callable[[SessionState, SessionState], SessionState | Awaitable[SessionState]] | None = None,
        retries: int = DEFAULT_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
    ) -> Saved:
        """Write `state` over version `expected`: the one write path of the engine and `update`.

        On a conflict (another writer moved the session on) and with `merge` given: wait a
        jittered backoff, reload, and write `merge(stored, state)` over the stored version,
        at most `retries` times. Raises the error a caller records by its `outcome`:
        VersionConflict ("conflict": no merge, or retries spent); SessionNotFound,
        StateRegressed or CorruptState ("lost": the stored state vanished, went back or no
        longer deserializes); StoreUnavailable ("error", with its class).
        """
        for attempt in range(retries + 1):
            try:
                await self.compare_and_set(state, expected)
                return Saved(state, attempt)
            except VersionConflict:
                if merge is None or attempt == retries:
                    raise
            self.stats.retries += 1
            if backoff_s > 0:
                await asyncio.sleep(random.uniform(0, backoff_s * (2 ** min(attempt, MAX_BACKOFF_DOUBLINGS))))
            stored = await self.load(state.id)
            merged = merge(stored, state)
            state = await merged if inspect.isawaitable(merged) else merged
            expected = stored.version
        raise AssertionError("unreachable")

    async def update(
        self,
        session_id: str,
        fn: Callable[[SessionState], Awaitable[None] | None],
        retries: int = DEFAULT_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
    ) -> SessionState:
        """load -> fn(state) -> save, `fn` applied again to the stored state on each conflict.

        `fn` mutates the loaded state and must be safe to run again on a fresh copy.
        Raises VersionConflict once `retries` retries are spent.
        """

        async def apply(state: SessionState) -> SessionState:
            outcome = fn(state)
            if outcome is not None:
                await outcome
            return state

        async def reapply(stored: SessionState, _mine: SessionState) -> SessionState:
            return await apply(stored)

        state = await apply(await self.load(session_id))
        return (await self.save(state, state.version, reapply, retries, backoff_s)).state

    async def delete(self, session_id: str) -> None:
        await self._call(lambda: self._redis.delete(self.key(session_id)))

    async def ttl_ms(self, session_id: str) -> int:
        return int(await self._call(lambda: self._redis.pttl(self.key(session_id))))


def classify(exc: RedisError) -> str:
    """The class (STORE_ERROR_CLASSES) of an error Redis answered with. Redis 6 wraps an
    error raised inside a script ("ERR Error running script ... -READONLY ..."), so the
    text is searched, not only its first word."""
    text = str(exc)
    if isinstance(exc, ReadOnlyError) or "READONLY" in text:
        return "read_only"
    if isinstance(exc, OutOfMemoryError) or text.startswith("OOM") or "-OOM" in text or "OOM command" in text:
        return "out_of_memory"
    if isinstance(exc, NoScriptError) or "Error running script" in text or "user_script" in text or "script:" in text:
        return "script_error"
    return "unavailable"


def _clean(exc: BaseException, url: str | None = None) -> str:
    """An exception's message without any password it might quote; an error that Redis 6
    wrapped in "Error running script (call to f_...): @user_script:N: ... -ERROR" unwrapped."""
    text = str(exc) or type(exc).__name__
    if "Error running script" in text and ": -" in text:
        text = text.rsplit(": -", 1)[1].strip() + " (in the compare-and-set script)"
    if url:
        password = urlsplit(url).password
        if password:
            text = text.replace(password, "***")
    return text
