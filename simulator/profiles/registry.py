"""The profiles of a run, by name: `make_profiles` builds them (the autoglm date line and
screenshot size are fixed when they are made); `PROFILES` is a default set."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from personas import PersonaScript
from scoring.actions import DEFAULT_COORD_BUCKET
from simulator.profiles.autoglm import AutoglmProfile
from simulator.profiles.chat import ChatProfile
from simulator.profiles.protocol import DialogueProfile
from simulator.profiles.screenshot import DEFAULT_SCREENSHOT


def make_profiles(screenshot: tuple[int, int] | None = DEFAULT_SCREENSHOT, params: Mapping[str, Any] | None = None,
                  coord_bucket: int = DEFAULT_COORD_BUCKET, run_date: str | None = None,
                  screenshot_bytes: int = 0) -> dict[str, DialogueProfile]:
    """The profiles of one run (the autoglm date line is fixed when they are made)."""
    autoglm: DialogueProfile = AutoglmProfile(run_date, screenshot, params, coord_bucket=coord_bucket,
                                              screenshot_bytes=screenshot_bytes)
    return {"chat": ChatProfile(), "autoglm": autoglm}


PROFILES: dict[str, DialogueProfile] = make_profiles()


def of_profile(scripts: Sequence[PersonaScript], profile: str) -> list[PersonaScript]:
    """The scripts of one profile (the built-in library holds both)."""
    return [s for s in scripts if s.profile == profile]
