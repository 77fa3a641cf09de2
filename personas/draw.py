"""Draw generated dialogues one by one, for the load: fresh, reproducible from a seed, fast.

Hypothesis's test runner is built to find bugs, not to sample: it starts from the simplest
example and mutates the ones it has. Drawn through `@given`, 40% of 1,000 dialogues were
the same two-turn one, at about 400 draws/s. The load wants independent draws from the same
strategies, so each dialogue here is drawn from a fresh `ConjectureData` over one seeded
`random.Random`: about 1,800 draws/s on one core, lengths spread evenly, repeats only by
chance, and the same seed gives the same dialogues in the same order.

`ConjectureData` is Hypothesis's internal API. If a release moves it, the drawer falls back
to `@given` batches (public, slower, biased to simple dialogues) and `fallback` says so.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
from typing import Any, BinaryIO, Callable

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from personas.strategies import DialoguePlan, GenOptions, plans

FALLBACK_BATCH = 10  # examples per @given batch in the fallback, each drawing FALLBACK_PER plans
FALLBACK_PER = 20


@functools.lru_cache(maxsize=1)
def direct_draw() -> Callable[[st.SearchStrategy[Any], random.Random], Any] | None:
    """One draw from a strategy with a given Random, through Hypothesis internals, or None.
    Tried on first use, not at import (Hypothesis warns of strategies drawn while it loads)."""
    try:
        from hypothesis.control import BuildContext
        from hypothesis.internal.conjecture.data import ConjectureData
    except ImportError:
        return None

    def draw(strategy: st.SearchStrategy[Any], rng: random.Random) -> Any:
        data = ConjectureData(random=rng)
        with BuildContext(data, is_final=True, wrapped_test=None):  # type: ignore[arg-type]
            return data.draw(strategy)

    try:
        draw(st.integers(0, 1), random.Random(0))
    except Exception:  # noqa: BLE001 - any change of the internal API: use the public path
        return None
    return draw


class DialogueDrawer:
    """Plans drawn from `personas.strategies.plans(options)`, named `<prefix>-000001`, ..."""

    def __init__(self, options: GenOptions, seed: int = 0, prefix: str = "gen") -> None:
        options.check()
        self.options = options
        self._strategy = plans(options)
        self._rng = random.Random(f"convsim-generated:{seed}")  # str seeds hash the same in every process
        self._prefix = prefix
        self.drawn = 0
        self._direct = direct_draw()
        self.fallback = self._direct is None
        self._batch: list[DialoguePlan] = []

    def draw(self) -> DialoguePlan:
        if self._direct is not None:
            plan: DialoguePlan = self._direct(self._strategy, self._rng)
        else:
            if not self._batch:
                self._batch = self._given_batch()
            plan = self._batch.pop()
        self.drawn += 1
        return dataclasses.replace(plan, name=f"{self._prefix}-{self.drawn:06d}")

    def _given_batch(self) -> list[DialoguePlan]:
        out: list[DialoguePlan] = []
        strategy = self._strategy

        @hypothesis_seed(self._rng.getrandbits(64))
        @settings(max_examples=FALLBACK_BATCH, phases=[Phase.generate], database=None, deadline=None,
                  suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)
        @given(st.data())
        def collect(data: st.DataObject) -> None:
            out.extend(data.draw(strategy) for _ in range(FALLBACK_PER))

        collect()
        return out[::-1]


def options_to_json(options: GenOptions) -> str:
    return json.dumps(dataclasses.asdict(options))


def options_from_json(text: str) -> GenOptions:
    data = json.loads(text)
    if data.get("probe_distance") is not None:
        data["probe_distance"] = tuple(data["probe_distance"])
    return GenOptions(**data)


def serve(options: GenOptions, seed: int, out: BinaryIO) -> None:
    """Write drawn plans to `out`, one JSON line each, until the reader goes away. Run in a
    process of its own (`python -m personas.draw OPTIONS-JSON SEED`), the drawing takes none of
    the load generator's time; a full pipe holds it back."""
    drawer = DialogueDrawer(options, seed)
    try:
        while True:
            out.write(json.dumps(drawer.draw().to_json(), ensure_ascii=False).encode() + b"\n")
            out.flush()
    except (BrokenPipeError, KeyboardInterrupt):
        pass


def main(argv: list[str]) -> None:
    """`OPTIONS-JSON SEED`: serve plans on stdout (how the engine's drawer child runs)."""
    import sys
    import warnings

    warnings.simplefilter("ignore")  # nothing may reach stderr but a failure
    serve(options_from_json(argv[0]), int(argv[1]), sys.stdout.buffer)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
