"""Load and validate persona files (YAML or JSON) with errors that point at a line.

Every problem is reported as ``file:line: field: what is wrong; how to fix it`` through
`PersonaError`, before any load is sent.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from personas.pattern import PatternError, check
from personas.script import (
    ACTIONS,
    LANGUAGES,
    NORMALIZERS,
    PROFILES,
    FactSpec,
    PersonaScript,
    ToolResult,
    Turn,
    placeholders,
    superseded,
)

SUFFIXES = (".yaml", ".yml", ".json")
_TOP_KEYS = {"id", "language", "profile", "system", "facts", "turns", "think_time", "weight", "format", "tools", "title"}


class PersonaError(ValueError):
    """A persona file or directory that cannot be used; the message is one actionable line."""

    def __init__(self, source: str, line: int | None, where: str, problem: str) -> None:
        self.source, self.line, self.where, self.problem = source, line, where, problem
        place = f"{source}:{line}" if line else source
        super().__init__(f"{place}: {where}: {problem}" if where else f"{place}: {problem}")


def _plain(node: yaml.Node, path: str, lines: dict[str, int]) -> Any:
    """Turn a composed YAML node into Python values, remembering each path's line."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(yaml.safe_load(yaml.serialize(key_node)))
            child = f"{path}.{key}" if path else key
            out[key] = _plain(value_node, child, lines)
            lines.setdefault(child, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, f"{path}[{i}]", lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def parse_document(text: str, source: str) -> tuple[Any, dict[str, int]]:
    lines: dict[str, int] = {}
    if source.endswith(".json"):
        try:
            return json.loads(text), lines
        except json.JSONDecodeError as exc:
            raise PersonaError(source, exc.lineno, "", f"invalid JSON: {exc.msg}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PersonaError(source, line, "", f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if node is None:
        raise PersonaError(source, None, "", "the file is empty; a persona needs at least id and turns")
    return _plain(node, "", lines), lines


def build_script(data: Any, source: str, lines: dict[str, int] | None = None) -> PersonaScript:
    lines = lines or {}

    def fail(where: str, problem: str) -> PersonaError:
        probe = where
        while probe and probe not in lines:
            probe = probe.rpartition(".")[0] if "." in probe else ""
        return PersonaError(source, lines.get(probe) or lines.get(""), where, problem)

    if not isinstance(data, dict):
        raise fail("", "expected a mapping with id, language, profile, facts and turns")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown field; expected one of {', '.join(sorted(_TOP_KEYS))}")
    if data.get("format", 1) != 1:
        raise fail("format", f"unsupported format {data['format']!r}; this convsim reads format 1")
    pid = data.get("id")
    if not isinstance(pid, str) or not pid.strip():
        raise fail("id", "expected a non-empty string id, e.g. id: travel-booking-en")
    language = data.get("language", "en")
    if language not in LANGUAGES:
        raise fail("language", f"expected one of {', '.join(LANGUAGES)}, got {language!r}")
    profile = data.get("profile", "chat")
    if profile not in PROFILES:
        raise fail("profile", f"expected one of {', '.join(PROFILES)}, got {profile!r}")
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise fail("system", "expected a string system prompt")

    facts = _facts(data.get("facts") or {}, fail)
    turns = _turns(data.get("turns"), facts, profile, fail)
    tools = _tool_definitions(data.get("tools"), fail)
    declared = {t["function"]["name"] for t in tools}
    for i, turn in enumerate(turns):
        if turn.tool and turn.tool.name not in declared:
            raise fail(f"turns[{i}].tool", f"tool {turn.tool.name!r} is not declared under tools: ({', '.join(sorted(declared)) or 'none'})")

    think = data.get("think_time")
    think_s: float | None = None
    if think is not None:
        mean = think.get("mean_s") if isinstance(think, dict) else think
        if not isinstance(mean, (int, float)) or isinstance(mean, bool) or mean < 0:
            raise fail("think_time", "expected {mean_s: SECONDS} with SECONDS >= 0")
        think_s = float(mean)
    weight = data.get("weight", 1.0)
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
        raise fail("weight", "expected a positive number")
    return PersonaScript(
        id=pid, language=language, profile=profile, system=system, facts=facts,
        turns=turns, think_time_s=think_s, weight=float(weight), tools=tools, source=source,
        title=str(data.get("title") or ""),
    )


def _facts(raw: Any, fail: Any) -> dict[str, FactSpec]:
    if not isinstance(raw, dict):
        raise fail("facts", "expected a mapping of fact name -> {value|pool|pattern}")
    facts: dict[str, FactSpec] = {}
    for name, spec in raw.items():
        where = f"facts.{name}"
        if not str(name).isidentifier():
            raise fail(where, "fact names must be identifiers (letters, digits, _)")
        if isinstance(spec, (str, int, float)) and not isinstance(spec, bool):
            spec = {"value": str(spec)}
        if not isinstance(spec, dict):
            raise fail(where, "expected {value: X}, {pool: [X, Y]} or {pattern: REGEX}")
        kinds = [k for k in ("value", "pool", "pattern") if k in spec]
        if len(kinds) != 1:
            raise fail(where, "give exactly one of value, pool or pattern")
        extra = sorted(set(spec) - {"value", "pool", "pattern", "aliases", "corrects", "normalize"})
        if extra:
            raise fail(f"{where}.{extra[0]}", "unknown field; expected value, pool, pattern, aliases, corrects or normalize")
        normalizers = spec.get("normalize") or []
        if isinstance(normalizers, str):
            normalizers = [normalizers]
        if not isinstance(normalizers, list) or any(n not in NORMALIZERS for n in normalizers):
            raise fail(f"{where}.normalize", f"expected a list of {', '.join(NORMALIZERS)} (case, full-width forms "
                                             "and Chinese numerals are always normalized)")
        pool = spec.get("pool")
        if pool is not None and (not isinstance(pool, list) or not pool):
            raise fail(f"{where}.pool", "expected a non-empty list of values")
        pattern = spec.get("pattern")
        if pattern is not None:
            try:
                check(str(pattern))
            except PatternError as exc:
                raise fail(f"{where}.pattern", f"bad pattern: {exc}") from None
        value = None if spec.get("value") is None else str(spec["value"])
        aliases = spec.get("aliases") or {}
        if isinstance(aliases, list) and value is not None:
            aliases = {value: aliases}  # a list names other ways to write the one value
        if not isinstance(aliases, dict) or not all(isinstance(a, list) for a in aliases.values()):
            raise fail(f"{where}.aliases", "expected a list of strings (for value:) or {VALUE: [ALIAS, ..]}")
        corrects = spec.get("corrects")
        if corrects is not None and (corrects not in facts or corrects == name):
            raise fail(f"{where}.corrects", f"expected the name of a fact defined above this one, got {corrects!r}")
        facts[name] = FactSpec(
            name=name,
            value=value,
            pool=tuple(str(v) for v in pool or ()),
            pattern=None if pattern is None else str(pattern),
            aliases={str(k): tuple(str(a) for a in v) for k, v in aliases.items()},
            corrects=None if corrects is None else str(corrects),
            normalize=tuple(normalizers),
        )
    return facts


def _turns(raw: Any, facts: dict[str, FactSpec], profile: str, fail: Any) -> tuple[Turn, ...]:
    if not isinstance(raw, list) or not raw:
        raise fail("turns", "expected a non-empty list of turns, each {user: TEXT}")
    planted: set[str] = set()
    turns = []
    allowed = {"user", "expect", "tool"} | ({"screen", "action"} if profile == "autoglm" else set())
    for i, item in enumerate(raw):
        where = f"turns[{i}]"
        if isinstance(item, str):
            item = {"user": item}
        if not isinstance(item, dict):
            raise fail(where, "expected {user: TEXT}")
        extra = sorted(set(item) - allowed)
        if extra:
            raise fail(f"{where}.{extra[0]}", f"unknown field; a {profile} turn has {', '.join(sorted(allowed))}")
        screen = _screen(item, where, profile, i, fail)
        user = item.get("user", "" if profile == "autoglm" and i > 0 else None)
        if not isinstance(user, str) or (not user.strip() and not (profile == "autoglm" and i > 0)):
            need = "the task" if profile == "autoglm" else "non-empty text"
            raise fail(f"{where}.user" if "user" in item else where, f"expected user: TEXT with {need}")
        tool = _tool(item.get("tool"), f"{where}.tool", fail)
        stated = {name for text in Turn(user, tool=tool, screen=screen).texts() for name in placeholders(text)}
        for name in sorted(stated - set(facts)):
            raise fail(f"{where}.user", f"unknown fact {{{name}}}; define it under facts: or fix the name")
        expect = item.get("expect") or []
        if isinstance(expect, str):
            expect = [expect]
        if not isinstance(expect, list):
            raise fail(f"{where}.expect", "expected a list of fact names")
        for name in expect:
            if name not in facts:
                raise fail(f"{where}.expect", f"unknown fact {name!r}; known: {', '.join(facts) or 'none'}")
            if name not in planted:
                raise fail(f"{where}.expect", f"probe of {name!r} before any turn states it; plant it in an earlier turn")
            newer = [f for f in planted if name in superseded(facts, f)]
            if newer:
                raise fail(f"{where}.expect", f"{name!r} was corrected by {newer[0]!r} in an earlier turn; expect {newer[0]!r}")
        planted |= stated  # after the probe check: a probe is answered from earlier turns
        action = item.get("action")
        if action is not None and action not in ACTIONS:
            raise fail(f"{where}.action", f"expected one of {', '.join(ACTIONS)}, got {action!r}")
        turns.append(Turn(user=user, expect=tuple(str(e) for e in expect), tool=tool, screen=screen, action=action))
    return tuple(turns)


def _screen(item: dict[str, Any], where: str, profile: str, index: int, fail: Any) -> dict[str, Any] | None:
    if profile != "autoglm":
        return None
    screen = item.get("screen")
    if not isinstance(screen, dict) or not isinstance(screen.get("app"), str):
        raise fail(f"{where}.screen", "an autoglm step needs screen: {app: NAME, ...} (what the phone shows)")
    return screen


def _tool(raw: Any, where: str, fail: Any) -> ToolResult | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or "result" not in raw:
        raise fail(where, "expected {name: TOOL, arguments: {..}, result: TEXT}")
    arguments = raw.get("arguments") or {}
    result = raw["result"]
    return ToolResult(
        name=raw["name"],
        arguments=arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False),
        content=result if isinstance(result, str) else json.dumps(result, ensure_ascii=False),
    )


def _tool_definitions(raw: Any, fail: Any) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise fail("tools", "expected a list of {name, description, parameters}")
    out = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise fail(f"tools[{i}]", "expected {name: NAME, description: TEXT, parameters: JSON-SCHEMA}")
        out.append({"type": "function", "function": {
            "name": tool["name"], "description": str(tool.get("description", "")),
            "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
        }})
    return tuple(out)


def load_file(path: str | Path) -> PersonaScript:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PersonaError(str(path), None, "", f"cannot read: {exc.strerror}") from None
    data, lines = parse_document(text, str(path))
    return build_script(data, str(path), lines)


def load_personas(spec: str | Path) -> list[PersonaScript]:
    """Load `builtin`, one file, or every persona file in a directory (sorted, ids unique)."""
    if str(spec) == "builtin":
        return builtin_personas()
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES)
        if not files:
            raise PersonaError(str(path), None, "", f"no persona files ({', '.join(SUFFIXES)}) in this directory")
    elif path.exists():
        files = [path]
    else:
        raise PersonaError(str(path), None, "", "no such file or directory; pass a persona file, a directory or 'builtin'")
    scripts = [load_file(f) for f in files]
    seen: dict[str, str] = {}
    for script in scripts:
        if script.id in seen:
            raise PersonaError(script.source, None, "id", f"duplicate id {script.id!r}, also in {seen[script.id]}")
        seen[script.id] = script.source
    return scripts


def builtin_personas() -> list[PersonaScript]:
    folder = resources.files("personas") / "builtin"
    scripts = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(SUFFIXES):
            data, lines = parse_document(entry.read_text(encoding="utf-8"), f"builtin/{entry.name}")
            scripts.append(build_script(data, f"builtin/{entry.name}", lines))
    return scripts
