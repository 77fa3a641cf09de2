"""Errors raised by the session store.

::

    Exception
      SessionStoreError
        VersionConflict     the stored version is not the expected one (carries `current`)
        SessionNotFound     no state under the key (never written, expired or evicted)
        StateRegressed      the stored version is lower than one already seen (lost update)
        StoreUnavailable    Redis cannot be reached, answered with an error, or not in time;
                            `kind` is its class in STORE_ERROR_CLASSES
        CorruptState        a stored value that does not deserialize (carries the key; kind "corrupt")

Every store error a run can meet has a class, counted in `StoreStats` under that name:
``unavailable`` (unreachable for the retry bound, or an error that fits no other class),
``read_only`` (READONLY: a replica), ``out_of_memory`` (OOM: maxmemory with noeviction),
``script_error`` (the compare-and-set script failed), ``corrupt`` (a stored value that does
not deserialize), ``timeout`` (no answer within the caller's deadline: a stalled server).
"""

from __future__ import annotations

STORE_ERROR_CLASSES = ("unavailable", "read_only", "out_of_memory", "script_error", "corrupt", "timeout")


class SessionStoreError(Exception):
    kind = "error"
    # What a turn's state write that ended in this error is recorded as: "error" (it may or
    # may not have landed), "conflict" (retries spent) or "lost" (the stored state is gone).
    outcome = "error"


class VersionConflict(SessionStoreError):
    kind = "conflict"
    outcome = "conflict"

    def __init__(self, session_id: str, expected: int, current: int | None) -> None:
        self.session_id, self.expected, self.current = session_id, expected, current
        super().__init__(f"session {session_id}: expected version {expected}, stored {current}")


class SessionNotFound(SessionStoreError):
    kind = "not_found"
    outcome = "lost"

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"session {session_id}: no stored state (expired, evicted or never written)")


class StateRegressed(SessionStoreError):
    kind = "regressed"
    outcome = "lost"

    def __init__(self, session_id: str, seen: int, stored: int) -> None:
        self.session_id, self.seen, self.stored = session_id, seen, stored
        super().__init__(f"session {session_id}: stored version {stored} is below version {seen} seen earlier")


class StoreUnavailable(SessionStoreError):
    """`kind`: unavailable, read_only, out_of_memory, script_error or timeout."""

    def __init__(self, message: str, kind: str = "unavailable") -> None:
        super().__init__(message)
        self.kind = kind


class CorruptState(SessionStoreError):
    kind = "corrupt"
    outcome = "lost"

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(f"{key}: stored state does not deserialize ({reason})")
