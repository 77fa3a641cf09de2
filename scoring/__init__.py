"""Scoring: turn records into step figures with their uncertainty, and render scorecards.

Depends on nothing else in convsim; the record format (`scoring.records`) is the contract
with the engine. Exceptions::

    ValueError
      RecordError       a records.jsonl line that cannot be read
      EmbedderError     an embedding model that cannot be loaded
      CalibrationError  a calibration file that cannot be read
      JudgeError        a strong OCS judge that cannot be loaded, reached or understood

OCS is judged in layers (see `scoring.quality`; `judge_answers` on pairs outside a run): claims that conflict (`conflict`), the
embedding where it is confident (`Thresholds`), then an optional strong judge behind the
`PairJudge` protocol (`NliJudge`, `LlmJudge`, built by `load_judge`).
"""

from scoring.calibration import (
    DEFAULT_THRESHOLD,
    DEFAULT_THRESHOLDS,
    Calibration,
    CalibrationError,
    calibrate,
    load_pairs,
    load_probes,
)
from scoring.claims import conflict
from scoring.embed import (
    DEFAULT_EMBEDDER,
    EMBEDDERS,
    Embedder,
    EmbedderError,
    load_embedder,
)
from scoring.facts import judge_probe, load_rules
from scoring.gates import TOLERANCES, Gates, verdict
from scoring.judges import (
    JUDGE_KINDS,
    JudgeError,
    LlmJudge,
    NliJudge,
    PairJudge,
    load_judge,
)
from scoring.normalize import normalize
from scoring.pairs import PairVerdict, judge_answers
from scoring.rates import JudgeRates, Thresholds
from scoring.records import (
    RECORD_VERSION,
    RecordError,
    RunRecords,
    TurnRecord,
    iter_records,
    load_records,
    read_run,
)
from scoring.render import (
    WRITERS,
    JsonWriter,
    MarkdownWriter,
    TerminalWriter,
    write_scorecards,
)
from scoring.scorecard import (
    ERROR_CLASSES,
    SCHEMA,
    ScoringOptions,
    build_scorecard,
    score_step,
)
from scoring.stats import (
    PERCENTILES,
    Summary,
    cv_interval,
    paired_delta,
    quantiles,
    summarize,
    wilson,
)

__all__ = [
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
