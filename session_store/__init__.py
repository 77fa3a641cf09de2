"""Session state in Redis: versioned compare-and-set, TTL, conflict and loss accounting.

Exceptions::

    SessionStoreError
      VersionConflict     stored version differs from the expected one
      SessionNotFound     no state (expired, evicted, never written)
      StateRegressed      stored version below one already seen (lost update)
      StoreUnavailable    Redis unreachable, failing or too slow; `kind` names the class:
                          unavailable, read_only, out_of_memory, script_error, timeout
      CorruptState        a stored value that does not deserialize (kind "corrupt")

A write is `RedisSessionStore.save(state, expected, merge)`; each error's `outcome` says
how a turn whose write ended with it is recorded (error, conflict, lost).

Store errors are counted by class in `StoreStats` (`errors()`); the classes are
`session_store.errors.STORE_ERROR_CLASSES`.
"""

from session_store.embedded import HOW_TO_GET_REDIS, EmbeddedRedis, find_redis_server
from session_store.errors import (
    CorruptState,
    SessionNotFound,
    SessionStoreError,
    StateRegressed,
    StoreUnavailable,
    VersionConflict,
)
from session_store.state import STATE_FORMAT, SessionState
from session_store.store import (
    DEFAULT_TTL_S,
    RedisSessionStore,
    Saved,
    StoreStats,
    redact_url,
)

__all__ = [
    "DEFAULT_TTL_S",
    "HOW_TO_GET_REDIS",
    "STATE_FORMAT",
    "CorruptState",
    "EmbeddedRedis",
    "RedisSessionStore",
    "Saved",
    "SessionNotFound",
    "SessionState",
    "SessionStoreError",
    "StateRegressed",
    "StoreStats",
    "StoreUnavailable",
    "VersionConflict",
    "find_redis_server",
    "redact_url",
]
