"""Errors raised by the session store.

::

    Exception
      SessionStoreError
        VersionConflict     the stored version is not the expected one (carries `current`)
        SessionNotFound     no state under the key (never written, expired or evicted)
        StateRegressed      the stored version is lower than one already seen (lost update)
        StoreUnavailable    Redis cannot be reached or answered with an error
        CorruptState        a stored value that does not deserialize (carries the key)
"""

from __future__ import annotations


class SessionStoreError(Exception):
    pass


class VersionConflict(SessionStoreError):
    def __init__(self, session_id: str, expected: int, current: int | None) -> None:
        self.session_id, self.expected, self.current = session_id, expected, current
        super().__init__(f"session {session_id}: expected version {expected}, stored {current}")


class SessionNotFound(SessionStoreError):
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"session {session_id}: no stored state (expired, evicted or never written)")


class StateRegressed(SessionStoreError):
    def __init__(self, session_id: str, seen: int, stored: int) -> None:
        self.session_id, self.seen, self.stored = session_id, seen, stored
        super().__init__(f"session {session_id}: stored version {stored} is below version {seen} seen earlier")


class StoreUnavailable(SessionStoreError):
    pass


class CorruptState(SessionStoreError):
    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(f"{key}: stored state does not deserialize ({reason})")
