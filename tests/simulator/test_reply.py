"""Phone-agent replies parsed robustly, without eval, into one of four classes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scoring.actions import action_key
from simulator.profiles.reply import parse_reply


def test_compliant_reply() -> None:
    reply = parse_reply('<think>I should open the app.</think><answer>do(action="Launch", app="微信")</answer>')
    assert (reply.status, reply.name, dict(reply.args), reply.thinking) == ("compliant", "Launch", {"app": "微信"}, "I should open the app.")
    assert reply.history_text() == '<think>I should open the app.</think><answer>do(action="Launch", app="微信")</answer>'


def test_finish_is_found_first_and_tags_may_be_missing() -> None:
    reply = parse_reply('Done now. finish(message="已完成，do(action=\\"Tap\\") 不需要了")')
    assert reply.status == "missing_tags" and reply.name == "finish" and "do(action" in reply.args["message"]
    assert reply.thinking == "Done now."


def test_a_trailing_answer_tag_is_stripped_and_counted() -> None:
    reply = parse_reply('<think>t</think><answer>do(action="Type", text="hello")</answer></answer>')
    assert reply.status == "compliant" and reply.args == {"text": "hello"} and reply.trailing_tag
    reply = parse_reply('<think>t</think><answer>do(action="Tap", element=[500, 120])</answer>')
    assert not reply.trailing_tag


def test_unparseable_and_unknown() -> None:
    assert parse_reply('<think>t</think><answer>do(action="Tap", element=[500,').status == "unparseable"
    assert parse_reply("I am not sure what to do.").status == "unparseable"
    assert parse_reply('<think>t</think><answer>do(action="Teleport", to="moon")</answer>').status == "unknown_action"
    # Never evaluated: a call in an argument is not a literal, so the reply is unparseable.
    assert parse_reply('<answer>do(action="Type", text=__import__("os").getcwd())</answer>').status == "unparseable"


def test_coordinates_are_bucketed_for_comparison() -> None:
    a = action_key("Tap", {"element": [503, 118]}, bucket=50)
    assert a == action_key("Tap", {"element": [520, 140]}, bucket=50)
    assert a != action_key("Tap", {"element": [560, 118]}, bucket=50)
    assert action_key("Type", {"text": " Hello  World"}) == action_key("Type", {"text": "hello world"})


@given(st.text(max_size=200))
def test_any_text_gets_a_class_and_never_raises(text: str) -> None:
    assert parse_reply(text).status in ("compliant", "missing_tags", "unparseable", "unknown_action")


@given(st.sampled_from(["Tap", "Swipe", "Long Press"]), st.integers(0, 999), st.integers(0, 999), st.text(max_size=40))
def test_round_trip_of_generated_actions(name: str, x: int, y: int, thinking: str) -> None:
    thinking = thinking.replace("<", "").replace(">", "")
    reply = parse_reply(f'<think>{thinking}</think><answer>do(action="{name}", element=[{x}, {y}])</answer>')
    assert (reply.status, reply.name, reply.args["element"]) == ("compliant", name, [x, y])
