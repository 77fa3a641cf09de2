"""Dialogue sources: persona scripts, their loader and the built-in library, and
Hypothesis strategies that generate dialogues (`personas.strategies`).

Exceptions::

    ValueError
      PersonaError      a persona file that cannot be used (file, line, field, fix)
      PatternError      a fact pattern outside the supported regex subset
"""

from personas.dump import dump_yaml, to_data
from personas.loader import (
    PersonaError,
    build_script,
    builtin_personas,
    load_file,
    load_personas,
)
from personas.pattern import PatternError
from personas.script import (
    ACTIONS,
    FORMAT_VERSION,
    FactSpec,
    PersonaScript,
    ToolResult,
    Turn,
    render,
)

__all__ = [
    "ACTIONS",
    "FORMAT_VERSION",
    "FactSpec",
    "PatternError",
    "PersonaError",
    "PersonaScript",
    "ToolResult",
    "Turn",
    "build_script",
    "builtin_personas",
    "dump_yaml",
    "load_file",
    "load_personas",
    "render",
    "to_data",
]
