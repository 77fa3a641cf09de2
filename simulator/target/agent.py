"""The reference target's phone-agent mode: answers `<think>…</think><answer>ACTION</answer>`
from the task and the screen it is shown, like a stand-in AutoGLM.

The task comes from the first user message (if the target still sees it: forget the history
and the typed text loses the product); the screen from the newest one. Knobs inject what
goes wrong in the field: answers without tags, a trailing `</answer>`, cut-off or made-up
actions, repeating the previous action (a loop), and long thinking.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from typing import Any, Mapping, Sequence

from simulator.target.answers import content_text, is_chinese

SCREEN_INFO = "** Screen Info **"
FINAL_PAGES = {"设置", "已加入购物车", "消息已发送", "order placed", "sent", "walking directions"}
TYPING_PAGES = {"搜索框已激活", "搜索", "聊天窗口", "search box focused", "new message", "compose"}
COMPOSE_PAGES = {"聊天窗口", "compose"}
HOME_APPS = {"桌面", "Home"}
_APP = (re.compile(r"打开(.+?)[，,。]"), re.compile(r"[Oo]pen (?:the )?(.+?)(?: app)?(?:,| and |\.|$)"))
_SEARCH = (re.compile(r"搜索(.+?)[，,。]"), re.compile(r"给(.+?)发消息"), re.compile(r"search for (.+?)(?: and |,|\.|$)"),
           re.compile(r"order an? (.+?) to "), re.compile(r"send (.+?) this text"))
_MESSAGE = (re.compile(r"发消息[：:](.+)$"), re.compile(r"this text: (.+)$"))
_ACTION = re.compile(r"<answer>(.*?)</answer>", re.S)
PAD_ZH = "我再确认一下屏幕上的元素和任务的要求。"
PAD_EN = "Let me double-check the elements on the screen against the task. "


def is_agent_request(messages: Sequence[Mapping[str, Any]]) -> bool:
    users = [m for m in messages if m.get("role") == "user"]
    text = content_text(users[-1]) if users else ""
    return SCREEN_INFO in text or "screen_info:" in text


def _screen(text: str) -> dict[str, Any]:
    start = text.find("{")
    try:
        value = json.loads(text[start:]) if start >= 0 else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _first(patterns: Sequence[re.Pattern[str]], text: str) -> str | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return match.group(1).strip()
    return None


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def build_agent_answer(messages: Sequence[Mapping[str, Any]], rng: random.Random, *, tag_drift_rate: float = 0.0,
                       trailing_tag_rate: float = 0.0, loop_rate: float = 0.0, bad_action_rate: float = 0.0,
                       unknown_action_rate: float = 0.0, think_chars: int = 0) -> str:
    users = [content_text(m) for m in messages if m.get("role") == "user"]
    latest = users[-1] if users else ""
    screen = _screen(latest)
    app, page = str(screen.get("current_app", "")), str(screen.get("page", ""))
    task = next((u.split("screen_info:")[0].strip() for u in users if "screen_info:" in u), "")
    zh = is_chinese(task or latest)
    previous = [m.group(1) for m in (_ACTION.search(content_text(a)) for a in messages if a.get("role") == "assistant") if m]

    if page in FINAL_PAGES:
        action = f"finish(message={_quote(('任务完成：' if zh else 'Done: ') + (task or ''))})"
    elif app in HOME_APPS and page not in ("负一屏",):
        target = _first(_APP, task) if task else None
        action = f'do(action="Launch", app={_quote(target)})' if target else 'do(action="Back")'
    elif page in TYPING_PAGES:
        text = _first(_MESSAGE if page in COMPOSE_PAGES else _SEARCH, task) if task else None
        action = f'do(action="Type", text={_quote(text or ("搜索" if zh else "search"))})'
    elif page == "负一屏":
        action = 'do(action="Swipe", start=[800, 500], end=[200, 500])'
    else:
        spot = zlib.crc32(f"{app}/{page}".encode())
        action = f'do(action="Tap", element=[{100 + spot % 800}, {150 + (spot >> 10) % 700}])'

    if task:
        thinking = f"当前在{app}的{page}页面。任务是：{task.rstrip('。')}。" if zh else f"I am on the {page} page of {app}. The task: {task}. "
    else:
        thinking = f"当前在{app}的{page}页面，我不清楚任务是什么。" if zh else f"I am on the {page} page of {app}; I do not know the task. "
    while len(thinking) < think_chars:
        thinking += PAD_ZH if zh else PAD_EN

    if previous and rng.random() < loop_rate:
        action = previous[-1]  # stuck: the same action again
    fault = rng.random()
    if fault < bad_action_rate:
        action = action[: max(4, len(action) // 2)]  # cut off mid-call
    elif fault < bad_action_rate + unknown_action_rate:
        action = 'do(action="Teleport", element=[500, 500])'
    style = rng.random()
    if style < tag_drift_rate:
        return f"{thinking}\n{action}"
    if style < tag_drift_rate + trailing_tag_rate:
        return f"<think>{thinking}</think><answer>{action}</answer></answer>"
    return f"<think>{thinking}</think><answer>{action}</answer>"
