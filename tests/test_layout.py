"""The public faces of the packages, the direction of imports, a light start-up path."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import personas
import scoring
import session_store
import simulator

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("simulator", "session_store", "personas", "scoring")


def test_public_names_are_pinned() -> None:
    assert session_store.__all__ == [
        "DEFAULT_TTL_S", "HOW_TO_GET_REDIS", "STATE_FORMAT", "CorruptState", "EmbeddedRedis", "RedisSessionStore", "Saved",
        "SessionNotFound", "SessionState", "SessionStoreError", "StateRegressed", "StoreStats", "StoreUnavailable",
        "VersionConflict", "find_redis_server", "redact_url",
    ]
    assert personas.__all__ == [
        "ACTIONS", "FORMAT_VERSION", "FactSpec", "PatternError", "PersonaError", "PersonaScript", "ToolResult", "Turn",
        "build_script", "builtin_personas", "dump_yaml", "load_file", "load_personas", "render", "to_data",
    ]
    assert scoring.__all__ == [
        "DEFAULT_EMBEDDER",
        "DEFAULT_THRESHOLD",
        "DEFAULT_THRESHOLDS",
        "EMBEDDERS",
        "ERROR_CLASSES",
        "JUDGE_KINDS",
        "PERCENTILES",
        "RECORD_VERSION",
        "SCHEMA",
        "TOLERANCES",
        "WRITERS",
        "Calibration",
        "CalibrationError",
        "Embedder",
        "EmbedderError",
        "Gates",
        "JsonWriter",
        "JudgeError",
        "JudgeRates",
        "LlmJudge",
        "MarkdownWriter",
        "NliJudge",
        "PairJudge",
        "PairVerdict",
        "RecordError",
        "RunRecords",
        "ScoringOptions",
        "Summary",
        "TerminalWriter",
        "Thresholds",
        "TurnRecord",
        "build_scorecard",
        "calibrate",
        "conflict",
        "cv_interval",
        "iter_records",
        "judge_answers",
        "judge_probe",
        "load_embedder",
        "load_judge",
        "load_pairs",
        "load_probes",
        "load_records",
        "load_rules",
        "normalize",
        "paired_delta",
        "quantiles",
        "read_run",
        "score_step",
        "summarize",
        "verdict",
        "wilson",
        "write_scorecards",
    ]
    assert simulator.__all__ == [
        "ARRIVALS", "PROFILES", "VERSION", "AiohttpTransport", "Arrival", "ChatProfile", "Completion", "ContextOverflow",
        "DialogueProfile", "EndpointClient", "EndpointConnectError", "EndpointError", "EndpointProtocolError",
        "EndpointStatusError", "EndpointTimeout", "Engine", "HttpxTransport", "ModelNotFound", "Progress",
        "RecordWriter", "RunConfig", "SourceMix", "Transport", "UsageError", "default_max_sessions", "load_sources",
        "make_profiles", "of_profile", "parse_qps", "preflight",
    ]
    for module in (session_store, personas, scoring, simulator):
        assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n))


def imported_packages(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module.split(".")[0] if node.level == 0 else package)
            elif isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
    return found & set(PACKAGES)


def test_imports_point_one_way() -> None:
    assert imported_packages("personas") <= {"personas"}
    assert imported_packages("session_store") <= {"session_store"}
    assert imported_packages("scoring") <= {"scoring"}
    assert imported_packages("simulator") <= set(PACKAGES)


# What each part of the simulator may import of the simulator (itself always).
SIMULATOR_RULES = {
    "usage": set(), "version": set(), "process": set(),
    "client": {"usage"},
    "profiles": set(),
    "engine": {"client", "profiles", "process", "usage"},
    "check": {"engine", "client", "profiles", "process", "usage"},
    "target": {"process", "usage"},
    "cli": {"engine", "client", "profiles", "check", "target", "process", "usage", "version"},
}


def module_imports() -> dict[str, set[str]]:
    """Module name -> the convsim modules it imports (at any depth: inside functions too)."""
    paths = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        found = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = {f"{node.module}.{a.name}" for a in node.names} & set(paths)
                found.update(submodules or {node.module})  # `from pkg import module` imports the module
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
    return {name: {t for t in targets if t in paths} for name, targets in graph.items()}


def part(module: str) -> str | None:
    pieces = module.split(".")
    return pieces[1] if pieces[0] == "simulator" and len(pieces) > 1 else None


def test_simulator_parts_import_only_what_they_may() -> None:
    wrong = []
    for module, targets in module_imports().items():
        source = part(module)
        if source is None:
            continue
        for target in targets:
            dest = part(target)
            if dest is not None and dest != source and dest not in SIMULATOR_RULES[source]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong
    assert set(SIMULATOR_RULES) == {p.stem if p.is_file() else p.name for p in (ROOT / "simulator").iterdir()
                                    if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}


def test_no_module_imports_in_a_circle() -> None:
    """Inside every package, imports form no cycle (a package's face, its __init__, aside:
    it only re-exports its modules)."""
    graph = {m: {t for t in ts if not is_face(t, m)} for m, ts in module_imports().items()}
    seen: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        seen[module] = 1
        for target in sorted(graph.get(module, ())):
            if seen.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in seen:
                visit(target, path + [target])
        seen[module] = 2

    for module in sorted(graph):
        if module not in seen:
            visit(module, [module])
    assert not cycles, cycles


def is_face(target: str, importer: str) -> bool:
    """`target` is a package's __init__ that `importer` sits outside of (its public face)."""
    return (ROOT / target.replace(".", "/") / "__init__.py").exists() and not importer.startswith(target + ".")


def test_run_path_does_not_import_torch() -> None:
    code = "import simulator.cli, simulator.cli.runner, sys; print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
