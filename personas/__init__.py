"""Dialogue sources: persona scripts, their loader and the built-in library.

Exceptions::

    ValueError
      PersonaError      a persona file that cannot be used (file, line, field, fix)
      PatternError      a fact pattern outside the supported regex subset
"""

from personas.loader import PersonaError, build_script, builtin_personas, load_file, load_personas
from personas.pattern import PatternError
from personas.script import FORMAT_VERSION, FactSpec, PersonaScript, Turn, render

__all__ = [
    "FORMAT_VERSION",
    "FactSpec",
    "PatternError",
    "PersonaError",
    "PersonaScript",
    "Turn",
    "build_script",
    "builtin_personas",
    "load_file",
    "load_personas",
    "render",
]
