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
        "DEFAULT_TTL_S", "HOW_TO_GET_REDIS", "STATE_FORMAT", "CorruptState", "EmbeddedRedis", "RedisSessionStore",
        "SessionNotFound", "SessionState", "SessionStoreError", "StateRegressed", "StoreStats", "StoreUnavailable",
        "VersionConflict", "find_redis_server", "redact_url",
    ]
    assert personas.__all__ == [
        "ACTIONS", "FORMAT_VERSION", "FactSpec", "PatternError", "PersonaError", "PersonaScript", "ToolResult", "Turn",
        "build_script", "builtin_personas", "dump_yaml", "load_file", "load_personas", "render", "to_data",
    ]
    assert scoring.__all__ == [
        "DEFAULT_EMBEDDER", "DEFAULT_THRESHOLD", "DEFAULT_THRESHOLDS", "EMBEDDERS", "ERROR_CLASSES", "JUDGE_KINDS",
        "PERCENTILES", "RECORD_VERSION", "SCHEMA", "TOLERANCES", "WRITERS", "Calibration", "CalibrationError",
        "Embedder", "EmbedderError", "Gates", "JsonWriter", "JudgeError", "JudgeRates", "LlmJudge", "MarkdownWriter",
        "NliJudge", "PairJudge", "RecordError", "ScoringOptions", "Summary", "TerminalWriter", "Thresholds",
        "build_scorecard", "calibrate", "conflict", "cv_interval", "iter_records", "judge_probe", "load_embedder",
        "load_judge", "load_pairs", "load_probes", "load_records", "load_rules", "normalize", "paired_delta",
        "quantiles", "read_run", "score_step", "summarize", "verdict", "wilson",
    ]
    assert simulator.__all__ == [
        "ARRIVALS", "PROFILES", "AiohttpTransport", "Arrival", "ChatProfile", "Completion", "ContextOverflow",
        "DialogueProfile", "EndpointClient", "EndpointConnectError", "EndpointError", "EndpointProtocolError",
        "EndpointStatusError", "EndpointTimeout", "Engine", "HttpxTransport", "ModelNotFound", "Progress",
        "RunConfig", "Transport", "UsageError", "default_max_sessions", "parse_qps",
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


def test_run_path_does_not_import_torch() -> None:
    code = "import simulator.cli, simulator.runner, sys; print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
