"""The `convsim` command: its group, its commands, and the entry point (`main`)."""

from __future__ import annotations

import click

from simulator.cli.bench import bench_command
from simulator.cli.check import check_command
from simulator.cli.personas import personas_group
from simulator.cli.run import run_command
from simulator.cli.scoring import calibrate_command, compare_command, report_command
from simulator.target.command import target_command
from simulator.usage import run_click
from simulator.version import VERSION


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(VERSION, prog_name="convsim")
def cli() -> None:
    """convsim: does your multi-turn LLM service stay stable, remember and answer
    consistently when the load rises?

    \b
    First run (no services needed: a reference target and Redis start by themselves):
      convsim run --qps 50,200,500 --duration 30
    Against your deployment (chat dialogues, or phone-agent sessions):
      convsim run --target http://localhost:8000/v1 --model autoglm-phone-9b --qps 10,50
      convsim run --target http://localhost:8000/v1 --profile autoglm --qps 5,20
    Search for dialogues it forgets, shrunk to the smallest:
      convsim check --target http://localhost:8000/v1
    Re-score and compare runs (exit 1 on a failed gate or a regression):
      convsim report runs/<id>;  convsim compare runs/<a> runs/<b>
    """



for _command in (run_command, report_command, compare_command, calibrate_command, check_command, personas_group,
                 target_command, bench_command):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage and setup errors become one line on stderr and exit 2."""
    run_click(cli, argv, "convsim")
