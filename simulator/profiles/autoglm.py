"""The `autoglm` profile: a session is, on the wire, what the stock phone-agent client sends.

- A system prompt (Chinese by default, English for `language: en` scripts) that describes
  the action space, the 0-999 coordinate grid and the think/answer reply format, with a
  date line fixed for the whole run (so it cannot perturb consistency scoring).
- Turn 1: the task plus a `screen_info` JSON; later turns: `** Screen Info **` and the JSON.
- A synthetic screenshot (base64 PNG `image_url` part, 1080x2400 by default) on the newest
  user message only; older user messages keep their text, as the stock client strips images.
- Request parameters as the stock client sends them, each overridable.
- The assistant message kept in history is rebuilt as think + answer from the parsed reply.
"""

from __future__ import annotations

import itertools
import json
from datetime import date
from typing import Any, Mapping, Sequence

from personas import PersonaScript, render
from personas.script import placeholders
from scoring.actions import DEFAULT_COORD_BUCKET, action_key
from simulator.profiles.reply import Reply, parse_reply
from simulator.profiles.screenshot import (
    DEFAULT_SCREENSHOT,
    cached_screenshot,
    warm_screenshot,
)

DEFAULT_PARAMS = {"temperature": 0.0, "top_p": 0.85, "frequency_penalty": 0.2, "max_tokens": 3000}
SCREEN_INFO = "** Screen Info **"
ACTION_MARKERS: tuple[str, ...] = ("<answer>", "do(action=", "finish(message=")
PATCH_PX = 28  # one visual token per 28x28 pixels, a GLM-4.1V-style estimate

SYSTEM_ZH = """今天是{date}。
你是一个在安卓手机上替用户完成任务的智能体。每一步你会收到任务、当前屏幕的信息和截图，请先思考，再给出下一步唯一的操作。
回复格式：<think>你的思考</think><answer>操作</answer>
坐标使用 0 到 999 的相对网格，左上角为 (0,0)，右下角为 (999,999)。可用操作：
- do(action="Launch", app="应用名")：打开应用
- do(action="Tap", element=[x,y])：点击
- do(action="Type", text="文字")：在当前输入框输入文字
- do(action="Swipe", start=[x1,y1], end=[x2,y2])：滑动
- do(action="Long Press", element=[x,y])：长按
- do(action="Double Tap", element=[x,y])：双击
- do(action="Back")：返回上一页
- do(action="Home")：回到桌面
- do(action="Wait", duration="2 seconds")：等待页面加载
- do(action="Take_over", message="原因")：需要用户接手（登录、验证码、支付）
- do(action="Note", message="内容")：记下页面上的信息
- do(action="Call_API", instruction="说明")：整理或总结已记录的信息
- do(action="Interact")：有多个选项需要用户决定
- finish(message="结果")：任务完成
每次只输出一个操作；任务完成时必须用 finish 结束。"""

SYSTEM_EN = """Today is {date}.
You are an agent that completes the user's task on an Android phone. At each step you get the task, information about the current screen and a screenshot; think first, then give exactly one next action.
Reply format: <think>your reasoning</think><answer>action</answer>
Coordinates are on a relative 0-999 grid: (0,0) is the top left, (999,999) the bottom right. Actions:
- do(action="Launch", app="name"): open an app
- do(action="Tap", element=[x,y]): tap
- do(action="Type", text="..."): type into the focused field
- do(action="Swipe", start=[x1,y1], end=[x2,y2]): swipe
- do(action="Long Press", element=[x,y]): long press
- do(action="Double Tap", element=[x,y]): double tap
- do(action="Back"): go back one screen
- do(action="Home"): go to the home screen
- do(action="Wait", duration="2 seconds"): wait for the page to load
- do(action="Take_over", message="why"): the user must take over (login, captcha, payment)
- do(action="Note", message="..."): note information from the page
- do(action="Call_API", instruction="..."): summarize or process what was noted
- do(action="Interact"): several options, the user must choose
- finish(message="result"): the task is done
Give one action at a time, and end with finish when the task is done."""


class AutoglmProfile:
    name = "autoglm"

    def __init__(self, run_date: str | None = None, screenshot_size: tuple[int, int] | None = DEFAULT_SCREENSHOT,
                 params: Mapping[str, Any] | None = None, coord_bucket: int = DEFAULT_COORD_BUCKET,
                 screenshot_bytes: int = 0) -> None:
        self.date = run_date or date.today().isoformat()
        self.screenshot_size = screenshot_size
        self.screenshot_bytes = screenshot_bytes  # the PNG's weight on the wire (0: as drawn, a few KB)
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.coord_bucket = coord_bucket
        self.markers: tuple[str, ...] = ACTION_MARKERS
        self.ends_on_error = True
        self.image_tokens = 0 if not screenshot_size else -(-screenshot_size[0] // PATCH_PX) * -(-screenshot_size[1] // PATCH_PX)

    def system_prompt(self, script: PersonaScript) -> str:
        if script.system:
            return script.system
        return (SYSTEM_EN if script.language == "en" else SYSTEM_ZH).format(date=self.date)

    def user_text(self, script: PersonaScript, index: int, facts: Mapping[str, str]) -> str:
        turn = script.turns[index]
        info = screen_json(turn.screen or {}, facts)
        if index == 0:
            return f"{render(turn.user, facts)}\n\nscreen_info: {info}"
        return f"{SCREEN_INFO}\n\n{info}"

    def request_messages(self, system: str | None, history: Sequence[Mapping[str, Any]], user_text: str
                         ) -> list[Mapping[str, Any]]:
        head: list[Mapping[str, Any]] = [{"role": "system", "content": system}] if system else []
        newest: dict[str, Any] = {"role": "user", "content": user_text}
        if self.screenshot_size:
            width, height = self.screenshot_size
            image = cached_screenshot(_screen_of(user_text), width, height, self.screenshot_bytes)
            newest["content"] = [{"type": "text", "text": user_text},
                                 {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}}]
        return [*head, *history, newest]

    async def warm(self, scripts: Sequence[PersonaScript]) -> None:
        """Draw, before the first step, the screenshot of every screen the scripts can show
        (screens naming a pattern fact are drawn when first needed)."""
        if not self.screenshot_size:
            return
        screens = set()
        for script in scripts:
            if script.profile != self.name:
                continue
            for turn in script.turns:
                names = sorted({n for v in (turn.screen or {}).values() if isinstance(v, str) for n in placeholders(v)})
                choices = [_values(script, n) for n in names]
                if any(not c for c in choices):
                    continue
                for values in itertools.islice(itertools.product(*choices), 64):
                    screens.add(screen_json(turn.screen or {}, dict(zip(names, values))))
        for screen in sorted(screens):
            await warm_screenshot(screen, *self.screenshot_size, self.screenshot_bytes)

    async def prepare(self, user_text: str) -> None:
        """Make sure the newest screen's screenshot exists, drawn off the event loop."""
        if self.screenshot_size:
            await warm_screenshot(_screen_of(user_text), *self.screenshot_size, self.screenshot_bytes)

    def user_message(self, user_text: str) -> dict[str, Any]:
        return {"role": "user", "content": user_text}  # history keeps text only: the image is dropped

    def read_reply(self, text: str) -> tuple[dict[str, Any], Reply | None]:
        reply = parse_reply(text)
        content = reply.history_text() if reply.parsed else text
        return {"role": "assistant", "content": content}, reply

    def request_params(self) -> dict[str, Any]:
        return dict(self.params)

    def key(self, reply: Reply) -> tuple[Any, ...] | None:  # what a loop repeats
        return action_key(reply.name, reply.args, self.coord_bucket) if reply.parsed else None


def _values(script: PersonaScript, name: str) -> tuple[str, ...]:
    """Every value a fact can take, when it is a constant or a pool (a pattern: none listed)."""
    spec = script.facts[name]
    if spec.pool:
        return spec.pool
    return (spec.value,) if spec.value is not None else ()


def screen_json(screen: Mapping[str, Any], facts: Mapping[str, str]) -> str:
    """The `screen_info` JSON of a scripted screen, facts filled in."""
    shown = {key: render(value, facts) if isinstance(value, str) else value for key, value in screen.items()}
    return json.dumps({"current_app": shown.pop("app", ""), **shown}, ensure_ascii=False)


def _screen_of(user_text: str) -> str:
    """The screen JSON of a user text (what the screenshot is drawn from)."""
    start = user_text.find("{")
    return user_text[start:] if start >= 0 else user_text
