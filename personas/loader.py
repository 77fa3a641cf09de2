"""Load and validate persona files (YAML or JSON) with errors that point at a line.

Every problem is reported as ``file:line: field: what is wrong; how to fix it`` through
`PersonaError`, before any load is sent. A file is checked whole: the error raised names the
first problem and carries every problem of the file (or folder) in ``.problems``, so
`convsim personas validate` can list them all.

Files are untrusted input and are read under bounds: at most `MAX_FILE_BYTES`, nesting at
most `MAX_DEPTH` deep, no YAML aliases (``*name``: a few hundred bytes of them expand to
gigabytes, and ``x: &x [*x]`` to an endless structure), UTF-8 only. Each of these is one
file:line message, found in milliseconds, never a traceback.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any, Callable, TypeGuard

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
MAX_FILE_BYTES = 1024 * 1024  # the built-in library's largest file is a few KB
MAX_DEPTH = 64  # mappings and lists inside each other; a persona needs about 6
MAX_THINK_S = 24 * 3600.0  # a think time past a day is a typo (seconds, not ms?)
MAX_WEIGHT = 1e6


class PersonaError(ValueError):
    """A persona file or directory that cannot be used; the message is one actionable line.

    ``problems`` lists every problem found (this one first); the message names the first."""

    def __init__(self, source: str, line: int | None, where: str, problem: str) -> None:
        self.source, self.line, self.where, self.problem = source, line, where, problem
        place = f"{source}:{line}" if line else source
        super().__init__(f"{place}: {where}: {problem}" if where else f"{place}: {problem}")
        self.problems: list[PersonaError] = [self]

    @classmethod
    def of(cls, problems: list[PersonaError]) -> PersonaError:
        """One error for several problems: the first, carrying them all."""
        first = problems[0]
        if len(problems) == 1:
            return first
        more = f" (and {len(problems) - 1} more: convsim personas validate {first.source} lists them all)"
        error = cls(first.source, first.line, first.where, first.problem + more)
        error.problem = first.problem
        error.problems = list(problems)
        return error


class _Plain:
    """Turns a composed YAML node into Python values, remembering each path's line. The
    tree has no aliases and is at most MAX_DEPTH deep (`_check_events`)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[str, int] = {}
        self._constructor = yaml.constructor.SafeConstructor()

    def scalar(self, node: yaml.Node) -> Any:
        """A scalar (or a key node of any kind) as a Python value, by the tag the composer resolved."""
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:  # a bad !!timestamp, !!python/...
            why = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
            raise PersonaError(self.source, node.start_mark.line + 1, "", f"invalid YAML value: {why}") from None
        finally:
            self._constructor.constructed_objects.clear()

    def __call__(self, node: yaml.Node, path: str = "") -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(self.scalar(key_node))
                child = f"{path}.{key}" if path else key
                out[key] = self(value_node, child)
                self.lines.setdefault(child, key_node.start_mark.line + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        return self.scalar(node)


def _line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


def _check_events(text: str, source: str) -> None:
    """Refuse aliases and deep nesting before composing: the parser is iterative, so this
    pass is safe on any input, and the composer (recursive) only sees what passed."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise PersonaError(source, _line(event.start_mark), "",
                               f"YAML alias *{event.anchor} is not allowed in persona files (aliases can expand a "
                               "few bytes into gigabytes, or into an endless loop); write the value out")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise PersonaError(source, _line(event.start_mark), "",
                                   f"nested more than {MAX_DEPTH} levels deep; a persona needs a few")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _json_depth_line(text: str) -> int:
    """The line where JSON nesting first passes MAX_DEPTH (strings skipped)."""
    depth, line, in_string, escaped = 0, 1, False, False
    for ch in text:
        if ch == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif ch in "]}":
            depth -= 1
    return line


def _json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_document(text: str, source: str) -> tuple[Any, dict[str, int]]:
    lines: dict[str, int] = {}  # JSON: no lines known
    if source.endswith(".json"):
        too_deep = False
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PersonaError(source, exc.lineno, "", f"invalid JSON: {exc.msg}") from None
        except RecursionError:
            data, too_deep = None, True
        if too_deep or _json_depth(data) > MAX_DEPTH:
            raise PersonaError(source, _json_depth_line(text), "",
                               f"nested more than {MAX_DEPTH} levels deep; a persona needs a few") from None
        return data, lines
    try:
        _check_events(text, source)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PersonaError(source, line, "", f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if node is None:
        raise PersonaError(source, None, "", "the file is empty; a persona needs at least id and turns")
    plain = _Plain(source)
    return plain(node), plain.lines


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


Fail = Callable[[str, str], PersonaError]


def build_script(data: Any, source: str, lines: dict[str, int] | None = None) -> PersonaScript:
    """A script from parsed data; every problem is checked, and the PersonaError raised
    names the first and carries all of them (``.problems``)."""
    lines = lines or {}
    problems: list[PersonaError] = []

    def fail(where: str, problem: str) -> PersonaError:
        probe = where
        while probe and probe not in lines:
            probe = probe.rpartition(".")[0] if "." in probe else ""
        error = PersonaError(source, lines.get(probe) or lines.get(""), where, problem)
        problems.append(error)
        return error

    if not isinstance(data, dict):
        raise fail("", "expected a mapping with id, language, profile, facts and turns")
    for name in sorted(set(data) - _TOP_KEYS):
        fail(name, f"unknown field; expected one of {', '.join(sorted(_TOP_KEYS))}")
    if data.get("format", 1) != 1:
        raise PersonaError.of(problems + [fail("format", f"unsupported format {data['format']!r}; "
                                                         "this convsim reads format 1")])
    pid = data.get("id")
    if not isinstance(pid, str) or not pid.strip():
        fail("id", "expected a non-empty string id, e.g. id: travel-booking-en")
    language = data.get("language", "en")
    if language not in LANGUAGES:
        fail("language", f"expected one of {', '.join(LANGUAGES)}, got {language!r}")
    profile = data.get("profile", "chat")
    if profile not in PROFILES:
        fail("profile", f"expected one of {', '.join(PROFILES)}, got {profile!r}")
        profile = "chat"  # the turns are still checked, as chat turns
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        fail("system", "expected a string system prompt")

    facts, broken = _facts(data.get("facts") or {}, fail)
    turns = _turns(data.get("turns"), facts, broken, profile, fail)
    tools = _tool_definitions(data.get("tools"), fail)
    declared = {t["function"]["name"] for t in tools}
    if data.get("tools") is None or isinstance(data.get("tools"), list):
        for i, turn in enumerate(turns):
            if turn.tool and turn.tool.name not in declared:
                fail(f"turns[{i}].tool", f"tool {turn.tool.name!r} is not declared under tools: "
                                         f"({', '.join(sorted(declared)) or 'none'})")

    think = data.get("think_time")
    think_s: float | None = None
    if think is not None:
        mean = think.get("mean_s") if isinstance(think, dict) else think
        if not _number(mean) or not math.isfinite(mean) or mean < 0 or mean > MAX_THINK_S:
            fail("think_time", f"expected {{mean_s: SECONDS}} with SECONDS >= 0, a finite number of at most "
                               f"{MAX_THINK_S:g} (got {mean!r})")
        else:
            think_s = float(mean)
    weight = data.get("weight", 1.0)
    if not _number(weight) or not math.isfinite(weight) or weight <= 0 or weight > MAX_WEIGHT:
        fail("weight", f"expected a positive number up to {MAX_WEIGHT:g} (got {weight!r})")
    if problems:
        raise PersonaError.of(problems)
    return PersonaScript(
        id=str(pid), language=language, profile=profile, system=system, facts=facts,
        turns=turns, think_time_s=think_s, weight=float(weight), tools=tools, source=source,
        title=str(data.get("title") or ""),
    )


def _facts(raw: Any, fail: Fail) -> tuple[dict[str, FactSpec], set[str]]:
    """The valid facts, and the names of those with a problem (already reported, so the
    turns that use them are not reported again)."""
    facts: dict[str, FactSpec] = {}
    broken: set[str] = set()
    if not isinstance(raw, dict):
        fail("facts", "expected a mapping of fact name -> {value|pool|pattern}")
        return facts, broken
    for name, spec in raw.items():
        spec_or_none = _fact(name, spec, facts, fail)
        if spec_or_none is None:
            broken.add(str(name))
        else:
            facts[name] = spec_or_none
    return facts, broken


def _fact(name: str, spec: Any, facts: dict[str, FactSpec], fail: Fail) -> FactSpec | None:
    where = f"facts.{name}"
    if not str(name).isidentifier():
        fail(where, "fact names must be identifiers (letters, digits, _)")
        return None
    if isinstance(spec, (str, int, float)) and not isinstance(spec, bool):
        spec = {"value": str(spec)}
    if not isinstance(spec, dict):
        fail(where, "expected {value: X}, {pool: [X, Y]} or {pattern: REGEX}")
        return None
    ok = True
    kinds = [k for k in ("value", "pool", "pattern") if k in spec]
    if len(kinds) != 1:
        fail(where, "give exactly one of value, pool or pattern")
        ok = False
    extra = sorted(set(spec) - {"value", "pool", "pattern", "aliases", "corrects", "normalize"})
    for key in extra:
        fail(f"{where}.{key}", "unknown field; expected value, pool, pattern, aliases, corrects or normalize")
        ok = False
    normalizers = spec.get("normalize") or []
    if isinstance(normalizers, str):
        normalizers = [normalizers]
    if not isinstance(normalizers, list) or any(n not in NORMALIZERS for n in normalizers):
        fail(f"{where}.normalize", f"expected a list of {', '.join(NORMALIZERS)} (case, full-width forms "
                                   "and Chinese numerals are always normalized)")
        ok = False
    pool = spec.get("pool")
    if pool is not None and (not isinstance(pool, list) or not pool):
        fail(f"{where}.pool", "expected a non-empty list of values")
        ok = False
    pattern = spec.get("pattern")
    if pattern is not None:
        try:
            check(str(pattern))
        except PatternError as exc:
            fail(f"{where}.pattern", f"bad pattern: {exc}")
            ok = False
    value = None if spec.get("value") is None else str(spec["value"])
    aliases = spec.get("aliases") or {}
    if isinstance(aliases, list) and value is not None:
        aliases = {value: aliases}  # a list names other ways to write the one value
    if not isinstance(aliases, dict) or not all(isinstance(a, list) for a in aliases.values()):
        fail(f"{where}.aliases", "expected a list of strings (for value:) or {VALUE: [ALIAS, ..]}")
        ok = False
    corrects = spec.get("corrects")
    if corrects is not None and (corrects not in facts or corrects == name):
        fail(f"{where}.corrects", f"expected the name of a fact defined above this one, got {corrects!r}")
        ok = False
    if not ok:
        return None
    return FactSpec(
        name=name,
        value=value,
        pool=tuple(str(v) for v in pool or ()),
        pattern=None if pattern is None else str(pattern),
        aliases={str(k): tuple(str(a) for a in v) for k, v in aliases.items()},
        corrects=None if corrects is None else str(corrects),
        normalize=tuple(normalizers),
    )


def _turns(raw: Any, facts: dict[str, FactSpec], broken: set[str], profile: str, fail: Fail) -> tuple[Turn, ...]:
    if not isinstance(raw, list) or not raw:
        fail("turns", "expected a non-empty list of turns, each {user: TEXT}")
        return ()
    planted: set[str] = set()
    turns = []
    allowed = {"user", "expect", "tool"} | ({"screen", "action"} if profile == "autoglm" else set())
    for i, item in enumerate(raw):
        where = f"turns[{i}]"
        if isinstance(item, str):
            item = {"user": item}
        if not isinstance(item, dict):
            fail(where, "expected {user: TEXT}")
            continue
        ok = True
        for key in sorted(set(item) - allowed):
            fail(f"{where}.{key}", f"unknown field; a {profile} turn has {', '.join(sorted(allowed))}")
            ok = False
        screen = _screen(item, where, profile, fail)
        if profile == "autoglm" and screen is None:
            ok = False
        user = item.get("user", "" if profile == "autoglm" and i > 0 else None)
        if not isinstance(user, str) or (not user.strip() and not (profile == "autoglm" and i > 0)):
            need = "the task" if profile == "autoglm" else "non-empty text"
            fail(f"{where}.user" if "user" in item else where, f"expected user: TEXT with {need}")
            user, ok = "", False
        tool = _tool(item.get("tool"), f"{where}.tool", fail)
        if item.get("tool") is not None and tool is None:
            ok = False
        stated = {name for text in Turn(user, tool=tool, screen=screen).texts() for name in placeholders(text)}
        for name in sorted(stated - set(facts) - broken):
            fail(f"{where}.user", f"unknown fact {{{name}}}; define it under facts: or fix the name")
            ok = False
        expect = item.get("expect") or []
        if isinstance(expect, str):
            expect = [expect]
        if not isinstance(expect, list):
            fail(f"{where}.expect", "expected a list of fact names")
            expect, ok = [], False
        for name in expect:
            if name in broken:
                ok = False
            elif name not in facts:
                fail(f"{where}.expect", f"unknown fact {name!r}; known: {', '.join(facts) or 'none'}")
                ok = False
            elif name not in planted:
                fail(f"{where}.expect", f"probe of {name!r} before any turn states it; plant it in an earlier turn")
                ok = False
            else:
                newer = [f for f in planted if f in facts and name in superseded(facts, f)]
                if newer:
                    fail(f"{where}.expect", f"{name!r} was corrected by {newer[0]!r} in an earlier turn; "
                                            f"expect {newer[0]!r}")
                    ok = False
        planted |= stated  # after the probe check: a probe is answered from earlier turns
        action = item.get("action")
        if action is not None and action not in ACTIONS:
            fail(f"{where}.action", f"expected one of {', '.join(ACTIONS)}, got {action!r}")
            ok = False
        if ok:
            turns.append(Turn(user=user, expect=tuple(str(e) for e in expect), tool=tool, screen=screen,
                              action=action))
    return tuple(turns)


def _screen(item: dict[str, Any], where: str, profile: str, fail: Fail) -> dict[str, Any] | None:
    if profile != "autoglm":
        return None
    screen = item.get("screen")
    if not isinstance(screen, dict) or not isinstance(screen.get("app"), str):
        fail(f"{where}.screen", "an autoglm step needs screen: {app: NAME, ...} (what the phone shows)")
        return None
    return screen


def _tool(raw: Any, where: str, fail: Fail) -> ToolResult | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or "result" not in raw:
        fail(where, "expected {name: TOOL, arguments: {..}, result: TEXT}")
        return None
    arguments = raw.get("arguments") or {}
    result = raw["result"]
    try:
        return ToolResult(
            name=raw["name"],
            arguments=arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False,
                                                                              allow_nan=False, default=str),
            content=result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, allow_nan=False,
                                                                      default=str),
        )
    except ValueError:
        fail(where, "arguments and result must be JSON values (no .nan or .inf)")
        return None


def _tool_definitions(raw: Any, fail: Fail) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        fail("tools", "expected a list of {name, description, parameters}")
        return ()
    out = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            fail(f"tools[{i}]", "expected {name: NAME, description: TEXT, parameters: JSON-SCHEMA}")
            continue
        out.append({"type": "function", "function": {
            "name": tool["name"], "description": str(tool.get("description", "")),
            "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
        }})
    return tuple(out)


def read_text(path: Path) -> str:
    """A persona file's text: at most MAX_FILE_BYTES, UTF-8 (a bad byte is named by line)."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PersonaError(source, None, "", f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise PersonaError(source, None, "", f"larger than {MAX_FILE_BYTES // 1024} KiB; a persona file is a few KB "
                                             "(split a large library into several files in a folder)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PersonaError(source, line, "", f"not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                                             "save the file as UTF-8") from None


def load_file(path: str | Path) -> PersonaScript:
    path = Path(path)
    text = read_text(path)
    data, lines = parse_document(text, str(path))
    return build_script(data, str(path), lines)


def load_personas(spec: str | Path) -> list[PersonaScript]:
    """Load `builtin`, one file, or every persona file in a directory (sorted, ids unique).

    Every file is checked; the PersonaError raised names the first problem and carries
    every problem of every file in ``.problems``."""
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
    scripts: list[PersonaScript] = []
    problems: list[PersonaError] = []
    for file in files:
        try:
            scripts.append(load_file(file))
        except PersonaError as exc:
            problems += exc.problems
    seen: dict[str, str] = {}
    for script in scripts:
        if script.id in seen:
            problems.append(PersonaError(script.source, None, "id", f"duplicate id {script.id!r}, also in {seen[script.id]}"))
        seen.setdefault(script.id, script.source)
    if problems:
        raise PersonaError.of(problems)
    return scripts


def builtin_personas() -> list[PersonaScript]:
    folder = resources.files("personas") / "builtin"
    scripts = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(SUFFIXES):
            data, lines = parse_document(entry.read_text(encoding="utf-8"), f"builtin/{entry.name}")
            scripts.append(build_script(data, f"builtin/{entry.name}", lines))
    return scripts
