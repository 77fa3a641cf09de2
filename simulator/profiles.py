"""Dialogue profiles: how a session's history becomes a request and an answer becomes history.

A profile is a small object behind `DialogueProfile`, looked up by name in `PROFILES`.
`chat` sends text dialogues; the `autoglm` phone-agent profile has its own issue.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

from personas import PersonaScript, Turn, render


def tool_messages(turn: Turn, index: int, facts: dict[str, str]) -> list[dict[str, Any]]:
    """The tool call an application made before this turn and its result, as chat messages."""
    if turn.tool is None:
        return []
    call_id = f"call_{index}_{turn.tool.name}"
    call = {"id": call_id, "type": "function",
            "function": {"name": turn.tool.name, "arguments": render(turn.tool.arguments, facts)}}
    return [{"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call_id, "content": render(turn.tool.content, facts)}]


class DialogueProfile(Protocol):
    name: str

    def request_messages(
        self, system: str | None, history: Sequence[Mapping[str, Any]], user_text: str
    ) -> list[Mapping[str, Any]]: ...

    def user_message(self, user_text: str) -> dict[str, Any]: ...

    def assistant_message(self, answer: str) -> dict[str, Any]: ...

    def request_params(self) -> dict[str, Any]: ...


class ChatProfile:
    """Plain chat: [system] + the whole history + the new user message, every turn."""

    name = "chat"

    def request_messages(
        self, system: str | None, history: Sequence[Mapping[str, Any]], user_text: str
    ) -> list[Mapping[str, Any]]:
        head: list[Mapping[str, Any]] = [{"role": "system", "content": system}] if system else []
        return [*head, *history, self.user_message(user_text)]

    def user_message(self, user_text: str) -> dict[str, Any]:
        return {"role": "user", "content": user_text}

    def assistant_message(self, answer: str) -> dict[str, Any]:
        return {"role": "assistant", "content": answer}

    def request_params(self) -> dict[str, Any]:
        return {}


PROFILES: dict[str, DialogueProfile] = {p.name: p for p in (ChatProfile(),)}


def drivable(scripts: Sequence[PersonaScript]) -> list[PersonaScript]:
    """The scripts whose profile this version can drive (the library holds every profile)."""
    return [s for s in scripts if s.profile in PROFILES]
