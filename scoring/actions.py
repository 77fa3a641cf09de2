"""Phone-agent actions as scoring compares them: the reply format classes a turn record's
`reply.format` is one of, the key two actions are compared by (coordinates bucketed), and
the text a phone-agent probe is judged on. The parser that turns a reply's text into an
action is protocol code: `simulator.profiles.reply`.
"""

from __future__ import annotations

from typing import Any, Mapping

FORMAT_CLASSES = ("compliant", "missing_tags", "unparseable", "unknown_action")
TEXT_ARGS = ("text", "app", "message", "instruction")
DEFAULT_COORD_BUCKET = 50  # tap coordinates (0-999 grid) compare in buckets of this size


def action_key(name: str | None, args: Mapping[str, Any], bucket: int = DEFAULT_COORD_BUCKET) -> tuple[Any, ...]:
    """What two actions are compared by: the name and the arguments, coordinates bucketed
    (on the 0-999 grid) so that taps a few points apart count as the same tap."""
    items = []
    for key in sorted(args):
        value = args[key]
        if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
            value = tuple(int(v) // max(1, bucket) for v in value)
        elif isinstance(value, str):
            value = " ".join(value.casefold().split())
        elif isinstance(value, (list, dict)):
            value = repr(value)
        items.append((key, value))
    return (name, tuple(items))


def judged_text(record: Mapping[str, Any]) -> str:
    """What a phone-agent probe is judged on: the text the action carries (typed text, app,
    finish message); for an action without text (a tap), the reasoning that chose it."""
    reply = record.get("reply")
    if not reply:
        return str(record.get("text") or "")
    carried = [str(reply["args"][k]) for k in TEXT_ARGS if isinstance(reply.get("args", {}).get(k), str)]
    return " ".join(carried) if carried else str(reply.get("thinking") or "")
