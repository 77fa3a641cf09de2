"""SessionState and its compact, versioned serialization."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

STATE_FORMAT = 1


@dataclass
class SessionState:
    """One dialogue session as the store keeps it.

    `version` and `updated_at_ms` belong to the store: they are set from Redis on every
    successful write and are not part of the serialized payload.
    """

    id: str
    run_id: str
    persona: str
    replica: int = 0
    turn: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    status: str = "active"
    version: int = 0
    updated_at_ms: int = 0

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "f": STATE_FORMAT,
                "id": self.id,
                "run": self.run_id,
                "persona": self.persona,
                "replica": self.replica,
                "turn": self.turn,
                "status": self.status,
                "facts": self.facts,
                "messages": self.messages,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, version: int = 0, updated_at_ms: int = 0) -> "SessionState":
        raw = orjson.loads(data)
        if not isinstance(raw, dict) or raw.get("f") != STATE_FORMAT:
            raise ValueError(f"unknown state format {raw.get('f') if isinstance(raw, dict) else type(raw).__name__}")
        return cls(
            id=raw["id"], run_id=raw["run"], persona=raw["persona"], replica=raw["replica"],
            turn=raw["turn"], status=raw["status"], facts=raw["facts"], messages=raw["messages"],
            version=version, updated_at_ms=updated_at_ms,
        )
