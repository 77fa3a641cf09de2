"""`convsim personas`: list, show and validate persona scripts."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.table import Table

from personas import PersonaError, load_personas
from personas.dump import dump_yaml
from simulator.cli.options import stdout_console
from simulator.usage import UsageError


@click.group("personas")
def personas_group() -> None:
    """List, show and validate persona scripts (the built-in library or your files)."""


def _load(spec: str) -> list[Any]:
    """The library, persona files, or the generated dialogues a run drove (its folder)."""
    from simulator.engine.sources import BUILTIN, GENERATED, SourceSpec, load_scripts

    if spec == GENERATED:
        raise UsageError("--personas generated: those dialogues are drawn while a run goes on, so there is none "
                         "to read yet; give the folder of a run that drew them (--personas runs/<run-id>), or "
                         "builtin or a persona file")
    return load_scripts(SourceSpec(BUILTIN, None, 1.0) if spec == BUILTIN else SourceSpec("path", spec, 1.0), None)


@personas_group.command("list")
@click.option("--personas", "spec", default="builtin", show_default=True, metavar="PATH|RUN|builtin",
              help="builtin, a persona file or folder, or a run folder (the generated dialogues it drove).")
def personas_list(spec: str) -> None:
    """One line per persona: id, language, profile, turns, probes, farthest recall, title."""
    table = Table(title=f"personas: {spec}", title_justify="left")
    for name in ("id", "lang", "profile", "turns", "probes", "max back", "title"):
        table.add_column(name, justify="right" if name in ("turns", "probes", "max back") else "left")
    for script in _load(spec):
        distances = [back for turn in script.probe_plan() for _, back, _ in turn]
        table.add_row(script.id, script.language, script.profile, str(len(script.turns)),
                      str(sum(1 for t in script.turns if t.expect)), str(max(distances, default=0)), script.title)
    stdout_console().print(table)


@personas_group.command("show")
@click.argument("persona_id")
@click.option("--personas", "spec", default="builtin", show_default=True, metavar="PATH|RUN|builtin",
              help="builtin, a persona file or folder, or a run folder (the generated dialogues it drove).")
def personas_show(persona_id: str, spec: str) -> None:
    """Print one persona as a file you can copy and edit."""
    scripts = {s.id: s for s in _load(spec)}
    if persona_id not in scripts:
        raise UsageError(f"no persona {persona_id!r} in {spec}; see convsim personas list --personas {spec}")
    click.echo(dump_yaml(scripts[persona_id]), nl=False)


@personas_group.command("validate")
@click.argument("paths", nargs=-1, required=True)
def personas_validate(paths: tuple[str, ...]) -> None:
    """Check persona files or folders; print each problem as file:line: field: fix. Exit 2
    when any is invalid."""
    problems = 0
    bad: list[str] = []
    for path in paths:
        try:
            scripts = load_personas(path)
        except PersonaError as exc:
            for problem in sorted(exc.problems, key=lambda p: (p.source, p.line or 0)):  # all, not only the first
                click.echo(str(problem), err=True)
            problems += len(exc.problems)
            bad.append(path)
            continue
        click.echo(f"ok: {path}: {len(scripts)} persona(s): {', '.join(s.id for s in scripts)}")
    if problems:
        click.echo(f"convsim: error: {problems} problem{'s' if problems > 1 else ''} in {', '.join(bad)}", err=True)
        sys.exit(2)
