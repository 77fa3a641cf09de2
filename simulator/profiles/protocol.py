"""What a dialogue profile is (`DialogueProfile`), and the request of one turn built from it."""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

from personas import PersonaScript, Turn, render
from simulator.profiles.reply import Reply


def tool_messages(turn: Turn, index: int, facts: Mapping[str, str]) -> list[dict[str, Any]]:
    """The tool call an application made before this turn and its result, as chat messages."""
    if turn.tool is None:
        return []
    call_id = f"call_{index}_{turn.tool.name}"
    call = {"id": call_id, "type": "function",
            "function": {"name": turn.tool.name, "arguments": render(turn.tool.arguments, facts)}}
    return [{"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call_id, "content": render(turn.tool.content, facts)}]


def script_params(profile: DialogueProfile, script: PersonaScript,
                  overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Request parameters of a script's turns: the profile's, the script's tools, the run's
    overrides. The same for every turn, so computed once per script."""
    params = profile.request_params()
    if script.tools:
        params["tools"] = list(script.tools)
    params.update(overrides or {})
    return params


async def next_request(profile: DialogueProfile, script: PersonaScript, index: int, facts: Mapping[str, str],
                       system: str | None, history: Sequence[Mapping[str, Any]]
                       ) -> tuple[str, list[dict[str, Any]], list[Mapping[str, Any]]]:
    """(user text, tool messages before it, the request's messages) of one turn."""
    user_text = profile.user_text(script, index, facts)
    await profile.prepare(user_text)
    before = tool_messages(script.turns[index], index, facts)
    messages = profile.request_messages(system, [*history, *before] if before else history, user_text)
    return user_text, before, messages


class DialogueProfile(Protocol):
    name: str
    markers: tuple[str, ...]  # stream markers that end the thinking (time to end of thinking)
    image_tokens: int  # estimated prompt tokens of the image on the newest message
    ends_on_error: bool  # an agent stops at an error; a chat user may carry on

    def system_prompt(self, script: PersonaScript) -> str | None: ...

    def user_text(self, script: PersonaScript, index: int, facts: Mapping[str, str]) -> str: ...

    async def prepare(self, user_text: str) -> None: ...  # CPU work for the request, off the event loop

    async def warm(self, scripts: Sequence[PersonaScript]) -> None: ...  # before the first step

    def request_messages(
        self, system: str | None, history: Sequence[Mapping[str, Any]], user_text: str
    ) -> list[Mapping[str, Any]]: ...

    def user_message(self, user_text: str) -> dict[str, Any]: ...

    def read_reply(self, text: str) -> tuple[dict[str, Any], Reply | None]: ...

    def request_params(self) -> dict[str, Any]: ...

    def key(self, reply: Reply) -> tuple[Any, ...] | None: ...
