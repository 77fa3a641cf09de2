"""Phone-agent replies: `<think>...</think><answer>ACTION</answer>`, parsed without eval.

ACTION is `do(action="Tap", element=[x, y])`, `do(action="Type", text="...")`, ... or
`finish(message="...")`. Replies in the field drift: tags go missing, a stray `</answer>`
trails the action, the call is cut off, an action name is made up. The parser looks for
`finish(message=` first, then `do(action=`, then the answer tag; strips trailing tags;
reads the call with `ast.parse` and each argument with `ast.literal_eval` (literals only,
nothing is evaluated). Every reply gets one class: compliant, missing_tags, unparseable,
unknown_action.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

ACTION_NAMES = frozenset({
    "Launch", "Tap", "Type", "Swipe", "Back", "Home", "Long Press", "Double Tap", "Wait",
    "Take_over", "Note", "Call_API", "Interact", "finish",
})
THINK = re.compile(r"<think>(.*?)(?:</think>|<answer>|$)", re.S)
ANSWER = re.compile(r"<answer>(.*)", re.S)


@dataclass(frozen=True)
class Reply:
    status: str  # one of scoring.actions.FORMAT_CLASSES
    thinking: str = ""
    action_text: str = ""
    name: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    trailing_tag: bool = False

    @property
    def parsed(self) -> bool:
        return self.name is not None

    def as_record(self) -> dict[str, Any]:
        return {"format": self.status, "name": self.name, "args": dict(self.args), "trailing_tag": self.trailing_tag,
                "thinking": self.thinking}

    def history_text(self) -> str:
        """The assistant message as the stock client stores it: think + answer, rebuilt."""
        return f"<think>{self.thinking}</think><answer>{self.action_text}</answer>"


def _call(text: str) -> tuple[str | None, dict[str, Any], str] | None:
    """(function, keyword arguments, the call's text) of the first call in `text`, or None."""
    for end in [m.end() for m in re.finditer(r"\)", text)]:
        candidate = text[:end]
        try:
            node = ast.parse(candidate.strip(), mode="eval").body
        except SyntaxError:
            continue
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.args:
            return None
        args: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                return None
            try:
                args[keyword.arg] = ast.literal_eval(keyword.value)
            except (ValueError, SyntaxError, TypeError):
                return None
        return node.func.id, args, candidate.strip()
    return None


def parse_reply(text: str) -> Reply:
    has_think = "<think>" in text and "</think>" in text
    has_answer = "<answer>" in text and "</answer>" in text
    trailing = text.count("</answer>") > text.count("<answer>")
    think_match = THINK.search(text)
    thinking = think_match.group(1).strip() if think_match else ""
    start = text.find("finish(message=")
    if start < 0:
        start = text.find("do(action=")
    if start < 0:
        answer = ANSWER.search(text)
        if answer is None:
            return Reply("unparseable", thinking, trailing_tag=trailing)
        start = answer.start(1)
    if not has_think and not has_answer:
        thinking = text[:start].strip()
    body = text[start:].replace("</answer>", " ").strip()
    found = _call(body)
    if found is None:
        return Reply("unparseable", thinking, body, trailing_tag=trailing)
    function, args, call_text = found
    if function == "finish":
        name: str | None = "finish"
    elif function == "do":
        name = args.pop("action", None)
    else:
        name = None
    if not isinstance(name, str):
        return Reply("unparseable", thinking, call_text, trailing_tag=trailing)
    if name not in ACTION_NAMES:
        return Reply("unknown_action", thinking, call_text, name, args, trailing)
    status = "compliant" if has_think and has_answer else "missing_tags"
    return Reply(status, thinking, call_text, name, args, trailing)
