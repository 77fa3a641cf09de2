"""Write a PersonaScript back as a persona file (YAML), so a generated or shrunk dialogue can
be saved, reviewed and replayed with `convsim run --personas FILE`."""

from __future__ import annotations

import json
from typing import Any

import yaml

from personas.script import FORMAT_VERSION, FactSpec, PersonaScript, Turn


def _fact(spec: FactSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.value is not None:
        out["value"] = spec.value
    elif spec.pool:
        out["pool"] = list(spec.pool)
    else:
        out["pattern"] = spec.pattern
    if spec.aliases:
        out["aliases"] = {k: list(v) for k, v in spec.aliases.items()}
    if spec.corrects:
        out["corrects"] = spec.corrects
    if spec.normalize:
        out["normalize"] = list(spec.normalize)
    return out


def _turn(turn: Turn) -> dict[str, Any]:
    out: dict[str, Any] = {"user": turn.user}
    if turn.expect:
        out["expect"] = list(turn.expect)
    if turn.tool:
        out["tool"] = {"name": turn.tool.name, "arguments": turn.tool.arguments, "result": turn.tool.content}
    if turn.screen is not None:
        out["screen"] = dict(turn.screen)
    if turn.action:
        out["action"] = turn.action
    return out


def to_data(script: PersonaScript) -> dict[str, Any]:
    """The persona as plain data in the file format (what `build_script` reads)."""
    data: dict[str, Any] = {"format": FORMAT_VERSION, "id": script.id}
    if script.title:
        data["title"] = script.title
    data.update({"language": script.language, "profile": script.profile})
    if script.system is not None:
        data["system"] = script.system
    if script.tools:
        data["tools"] = [
            {"name": f["name"], "description": f.get("description", ""), "parameters": f.get("parameters")}
            for f in (json.loads(json.dumps(t))["function"] for t in script.tools)
        ]
    if script.facts:
        data["facts"] = {name: _fact(spec) for name, spec in script.facts.items()}
    data["turns"] = [_turn(t) for t in script.turns]
    if script.think_time_s is not None:
        data["think_time"] = {"mean_s": script.think_time_s}
    if script.weight != 1.0:
        data["weight"] = script.weight
    return data


def dump_yaml(script: PersonaScript) -> str:
    return yaml.safe_dump(to_data(script), allow_unicode=True, sort_keys=False, width=100)
