"""The `chat` profile: plain chat dialogues, the whole history sent every turn."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from personas import PersonaScript, render
from simulator.profiles.reply import Reply


class ChatProfile:
    """Plain chat: [system] + the whole history + the new user message, every turn."""

    name = "chat"
    markers: tuple[str, ...] = ()
    image_tokens = 0
    ends_on_error = False

    def system_prompt(self, script: PersonaScript) -> str | None:
        return script.system

    def user_text(self, script: PersonaScript, index: int, facts: Mapping[str, str]) -> str:
        return render(script.turns[index].user, facts)

    async def prepare(self, user_text: str) -> None:
        return None

    async def warm(self, scripts: Sequence[PersonaScript]) -> None:
        return None

    def request_messages(
        self, system: str | None, history: Sequence[Mapping[str, Any]], user_text: str
    ) -> list[Mapping[str, Any]]:
        head: list[Mapping[str, Any]] = [{"role": "system", "content": system}] if system else []
        return [*head, *history, self.user_message(user_text)]

    def user_message(self, user_text: str) -> dict[str, Any]:
        return {"role": "user", "content": user_text}

    def read_reply(self, text: str) -> tuple[dict[str, Any], Reply | None]:
        return {"role": "assistant", "content": text}, None

    def request_params(self) -> dict[str, Any]:
        return {}

    def key(self, reply: Reply) -> tuple[Any, ...] | None:
        return None
