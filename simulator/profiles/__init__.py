"""Dialogue profiles: how a session's history becomes a request, and an answer becomes history.

Owns: the `DialogueProfile` protocol and the request of one turn (`protocol`), the profiles
by name (`registry`), `chat`, the phone-agent `autoglm` prompts, its synthetic `screenshot`s,
the `reply` parser of `<think>/<answer>` actions, and the tokenizer-free `tokens` estimate.
May import: personas, scoring (the action key and format classes); nothing else of the simulator.
"""

from simulator.profiles.autoglm import AutoglmProfile
from simulator.profiles.chat import ChatProfile
from simulator.profiles.protocol import (
           DialogueProfile,
           next_request,
           script_params,
           tool_messages,
)
from simulator.profiles.registry import PROFILES, make_profiles, of_profile
from simulator.profiles.reply import Reply, parse_reply
from simulator.profiles.tokens import estimate_text_tokens

__all__ = ["PROFILES", "AutoglmProfile", "ChatProfile", "DialogueProfile", "Reply", "estimate_text_tokens",
           "make_profiles", "next_request", "of_profile", "parse_reply", "script_params", "tool_messages"]
