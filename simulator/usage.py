"""Bad input and how a command ends: `UsageError` (a flag, a file, a URL) becomes one line on
stderr, saying what, where and how to fix it, and exit status 2; Ctrl-C exits 130. Shared by
the `convsim` command and the reference target's own entry point; imports nothing of convsim,
so every part of the simulator may raise UsageError."""

from __future__ import annotations

import sys

import click

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad input; the message says what, where and how to fix it."""


def env_names(command: click.Command, prefix: str) -> None:
    """Every option reads PREFIX_<NAME> (e.g. CONVSIM_QPS), shown in --help."""
    for param in command.params:
        if isinstance(param, click.Option) and param.name and not param.envvar:
            param.envvar = f"{prefix}_{param.name.upper()}"
            param.show_envvar = True


def run_click(command: click.Command, argv: list[str] | None, prog_name: str) -> None:
    """Run a click command; usage errors (click's and ours) become one line and exit 2."""
    try:
        command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        hint = f" (see convsim {exc.ctx.info_name} --help)" if exc.ctx and exc.ctx.info_name != "convsim" else ""
        click.echo(f"convsim: error: {exc.format_message()}{hint}", err=True)
        sys.exit(EXIT_USAGE)
    except UsageError as exc:
        click.echo(f"convsim: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
