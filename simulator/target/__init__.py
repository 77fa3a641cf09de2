"""The built-in reference target (`convsim target`)."""

from simulator.target.launch import TargetProcess, serve, serving
from simulator.target.server import (
    DEFAULT_CONTEXT_TOKENS,
    DEFAULT_MODEL,
    ReferenceTarget,
    TargetConfig,
)

__all__ = ["DEFAULT_CONTEXT_TOKENS", "DEFAULT_MODEL", "ReferenceTarget", "TargetConfig", "TargetProcess", "serve", "serving"]
