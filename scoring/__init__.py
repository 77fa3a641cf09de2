"""Scoring: turn records into step figures with their uncertainty, and render scorecards.

Depends on nothing else in convsim; the record format (`scoring.records`) is the contract
with the engine. Exceptions::

    ValueError
      RecordError     a records.jsonl line that cannot be read
"""

from scoring.records import RECORD_VERSION, RecordError, iter_records, read_run
from scoring.render import WRITERS, JsonWriter, MarkdownWriter, TerminalWriter
from scoring.scorecard import ERROR_CLASSES, SCHEMA, build_scorecard, score_step, verdict
from scoring.stats import PERCENTILES, Summary, cv_interval, quantiles, summarize, wilson

__all__ = [
    "ERROR_CLASSES",
    "PERCENTILES",
    "RECORD_VERSION",
    "SCHEMA",
    "WRITERS",
    "JsonWriter",
    "MarkdownWriter",
    "RecordError",
    "Summary",
    "TerminalWriter",
    "build_scorecard",
    "cv_interval",
    "iter_records",
    "quantiles",
    "read_run",
    "score_step",
    "summarize",
    "verdict",
    "wilson",
]
