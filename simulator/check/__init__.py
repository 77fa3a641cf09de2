"""Property-based checking of one endpoint, one dialogue at a time, with no load and no store.

Owns: running one dialogue and judging its probes (`dialogue`, through the engine's own
turn steps), the Hypothesis search that shrinks a forgetting dialogue to the smallest
(`properties`), the background load that search may run under (`background`), and the
pytest plugin (`pytest_plugin`).
May import: simulator.engine, simulator.client, simulator.profiles, simulator.process,
simulator.usage, and personas, scoring.
"""

from simulator.check.dialogue import DialogueResult, TurnResult, run_dialogue

__all__ = ["DialogueResult", "TurnResult", "run_dialogue"]
