"""Where the engine's sessions come from: persona scripts, generated dialogues, or a mix.

`--personas` names one source or several, comma-separated, each with an optional weight
(`builtin:3,generated:1`: three groups in four run a library script):

- `builtin`, a persona file or a folder of them: scripts, drawn by their `weight`;
- `generated`: a fresh dialogue per replica group, drawn from `personas.strategies` with the
  `--gen-*` options, reproducible from --seed. Drawing is kept off the schedule: a child
  process draws, and groups are read ahead into a buffer (filled before the first step,
  refilled between slots);
- a run folder (with records.jsonl): the generated dialogues that run drove, replayed exactly.

Every group drawn here is written to the records before its first turn (a `personas` record
carrying each dialogue whole), so any session of a run can be replayed (see `scripts_of_run`).
With `metamorphic`, a generated group runs its dialogue on --replicas sessions and each
metamorphic variant (`personas.strategies.VARIANTS`) on one session beside them; a variant
that would send the very same words as the dialogue (one fact per statement already, nothing
to reorder) is left out: it would agree by construction on a deterministic model.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from personas import PersonaError, PersonaScript, build_script, load_personas, to_data
from personas.draw import options_to_json
from personas.loader import MAX_WEIGHT
from personas.script import ProbePlanTurn
from personas.strategies import VARIANTS, DialoguePlan, GenOptions
from simulator.engine.config import MAX_ERROR_CHARS, RunConfig, group_size
from simulator.process import child_command, die_with_parent
from simulator.profiles import (
    DialogueProfile,
    estimate_text_tokens,
    make_profiles,
    of_profile,
    script_params,
)
from simulator.usage import UsageError

GENERATED, BUILTIN = "generated", "builtin"
AHEAD_S = 3.0  # groups drawn ahead: this many seconds of a step's expected group starts
MIN_AHEAD, MAX_AHEAD = 16, 5000


@dataclass(frozen=True, slots=True)
class Prepared:
    """A script and what the engine computes once per script rather than once per turn."""

    script: PersonaScript
    plan: tuple[ProbePlanTurn, ...]  # per turn: (fact, turns back it was stated, superseded facts)
    stated: tuple[frozenset[str], ...]  # per turn, the facts it states
    system: str | None
    system_tokens: int
    params: dict[str, Any]
    stratum: str | None = None  # what steps are compared on: a generated dialogue's is its source


def prepare(script: PersonaScript, profiles: dict[str, DialogueProfile], request_params: dict[str, Any],
            stratum: str | None = None) -> Prepared:
    profile = profiles[script.profile]
    system = profile.system_prompt(script)
    return Prepared(script, script.probe_plan(), script.stated_facts(), system,
                    estimate_text_tokens(system) if system else 0, script_params(profile, script, request_params),
                    stratum)


@dataclass(frozen=True, slots=True)
class Member:
    """Sessions of one script inside a group: the dialogue's replicas, or one variant."""

    prepared: Prepared
    replicas: int
    variant: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    members: tuple[Member, ...]
    record: dict[str, Any] | None = None  # the `personas` record to write before its first turn


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # builtin | generated | path
    path: str | None
    weight: float


def parse_spec(text: str) -> list[SourceSpec]:
    """`--personas` text -> sources; UsageError (what, where, how to fix) on bad input."""
    out: list[SourceSpec] = []
    items = [item.strip() for item in str(text).split(",")]
    if not any(items):
        raise UsageError("--personas: empty; give builtin, generated, a persona file or folder, or a run folder")
    for item in items:
        if not item:
            raise UsageError(f"--personas {text!r}: an empty item between commas; e.g. --personas builtin,generated")
        name, weight = item, 1.0
        head, sep, tail = item.rpartition(":")
        if sep and not Path(item).exists():
            try:
                weight = float(tail)
            except ValueError:
                raise UsageError(f"--personas {item!r}: the weight after ':' must be a number, e.g. generated:2") from None
            if not math.isfinite(weight) or weight <= 0 or weight > MAX_WEIGHT:
                raise UsageError(f"--personas {item!r}: a weight must be a positive number up to {MAX_WEIGHT:g}, "
                                 "e.g. generated:2")
            name = head
        kind = name if name in (BUILTIN, GENERATED) else "path"
        if any(s.kind == kind and s.path == (None if kind != "path" else name) for s in out):
            raise UsageError(f"--personas: {name!r} is named twice; give each source once, with a weight")
        out.append(SourceSpec(kind, None if kind != "path" else name, weight))
    return out


def scripts_of_run(folder: Path) -> list[PersonaScript]:
    """The dialogues a run drove that were generated (each written whole to its records)."""
    from scoring.records import RecordError, iter_records

    scripts = []
    try:
        for record in iter_records(folder / "records.jsonl"):
            if record.get("kind") != "personas":
                continue
            for pid, data in (record.get("scripts") or {}).items():
                scripts.append(build_script(data, f"{folder}/records.jsonl#{pid}"))
    except (RecordError, OSError) as exc:
        raise UsageError(f"--personas {folder}: cannot read its records ({exc})") from None
    except PersonaError as exc:
        raise UsageError(f"--personas {folder}: a recorded dialogue is not a valid persona ({exc})") from None
    if not scripts:
        raise UsageError(f"--personas {folder}: this run folder holds no generated dialogue (a run of persona files, "
                         "or one that ended before its first group); pass persona files or another run")
    return scripts


def load_scripts(spec: SourceSpec, profile: str | None) -> list[PersonaScript]:
    """The scripts of a builtin (of one profile, or all with None), file, folder or
    run-folder source."""
    if spec.kind == BUILTIN:
        scripts = load_personas(BUILTIN)
        return scripts if profile is None else of_profile(scripts, profile)
    assert spec.path is not None
    path = Path(spec.path)
    if path.is_dir() and (path / "records.jsonl").exists():
        return scripts_of_run(path)
    if not path.exists():
        raise UsageError(f"--personas {spec.path}: no such file or folder; give builtin, generated, a persona file "
                         "or folder, or a run folder")
    try:
        return load_personas(path)
    except PersonaError as exc:
        raise UsageError(str(exc)) from None


class Scripts:
    """Scripts drawn by their weight; each prepared once."""

    def __init__(self, prepared: list[Prepared], replicas: int) -> None:
        self.groups = [Group((Member(p, replicas),)) for p in prepared]
        self._weights = list(itertools.accumulate(p.script.weight for p in prepared))

    def next(self, rng: random.Random) -> Group:
        return rng.choices(self.groups, cum_weights=self._weights)[0]


class Generated:
    """Fresh dialogues, drawn in a child process (`personas.draw.serve`) and read ahead into
    a buffer: the 0.6 ms a draw takes never runs on the schedule's thread. The child writes
    the seeded sequence of plans; a full pipe holds it back. A group start that finds no
    dialogue ready (the child fell behind, or stopped) is an unserved slot, counted."""

    def __init__(self, options: GenOptions, seed: int, replicas: int, metamorphic: bool,
                 profiles: dict[str, DialogueProfile], request_params: dict[str, Any]) -> None:
        options.check()
        self._options, self._seed = options, seed
        self._replicas, self._metamorphic = replicas, metamorphic
        self._profiles, self._params = profiles, request_params
        self._buffer: collections.deque[Group] = collections.deque()
        self.ahead = MIN_AHEAD  # the buffer's fill level
        self.drawn = 0  # groups read from the drawer
        self.missed = 0  # group starts that found no dialogue ready
        self.stopped: str | None = None  # why the drawer ended early
        self._turns = 0
        self._low = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def mean_sessions_turns(self) -> float:
        """Turns a group sends, on average so far (sessions x turns)."""
        return self._turns / self.drawn if self.drawn else 7.0 * group_size(self._replicas, self._metamorphic)

    def command(self) -> list[str]:
        return child_command("personas.draw", "main", options_to_json(self._options), str(self._seed))

    async def start(self, ahead: int) -> None:
        """Start the drawer and read until `ahead` groups wait (before the first step: nothing
        is in flight yet), then keep the buffer full in a task."""
        self.raise_to(ahead)
        self._proc = await asyncio.create_subprocess_exec(
            *self.command(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, preexec_fn=die_with_parent, limit=1 << 20)
        await self._fill(pause=False)
        self._task = asyncio.get_running_loop().create_task(self._refill())

    def group(self, plan: DialoguePlan) -> Group:
        original = plan.to_script()
        scripts: list[tuple[PersonaScript, str | None, int]] = [(original, None, self._replicas)]
        if self._metamorphic:  # a variant that sends the very same words tests nothing: left out
            words = [t.user for t in original.turns]
            variants = [(name, make(plan).to_script()) for name, make in VARIANTS.items()]
            scripts += [(script, name, 1) for name, script in variants if [t.user for t in script.turns] != words]
        members = tuple(Member(prepare(s, self._profiles, self._params, GENERATED), n, v) for s, v, n in scripts)
        self._turns += sum(len(s.turns) * n for s, _, n in scripts)
        record = {"kind": "personas", "personas": {s.id: s.header() for s, _, _ in scripts},
                  "scripts": {s.id: to_data(s) for s, _, _ in scripts}}
        return Group(members, record)

    async def _read_one(self) -> bool:
        assert self._proc is not None and self._proc.stdout is not None and self._proc.stderr is not None
        line = await self._proc.stdout.readline()
        if not line:  # the drawer ended: say why, once
            if self.stopped is None:
                said = (await self._proc.stderr.read()).decode(errors="replace").strip().splitlines()
                self.stopped = said[-1][:MAX_ERROR_CHARS] if said else f"exited with status {await self._proc.wait()}"
            return False
        self._buffer.append(self.group(DialoguePlan.from_json(json.loads(line))))
        self.drawn += 1
        return True

    async def _fill(self, pause: bool) -> None:
        while len(self._buffer) < self.ahead:
            if not await self._read_one():
                return
            if pause:
                await asyncio.sleep(0)  # one group (about 0.15 ms) between slots

    async def _refill(self) -> None:
        while self.stopped is None:
            await self._low.wait()
            self._low.clear()
            await self._fill(pause=True)

    def next(self, rng: random.Random) -> Group | None:
        if not self._buffer:
            self.missed += 1
            return None
        group = self._buffer.popleft()
        if len(self._buffer) < self.ahead:
            self._low.set()
        return group

    def raise_to(self, ahead: int) -> None:
        """Keep at least `ahead` groups read (the refill task reads them between slots)."""
        self.ahead = max(self.ahead, min(MAX_AHEAD, ahead))
        if len(self._buffer) < self.ahead:
            self._low.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()
        self._task = self._proc = None


class SourceMix:
    """The sources of `--personas`, each chosen per new group by its weight."""

    def __init__(self, sources: Sequence[tuple[float, Scripts | Generated]], scripts: list[PersonaScript],
                 profiles: dict[str, DialogueProfile]) -> None:
        self.profiles = profiles
        self.sources = [s for _, s in sources]
        self._weights = list(itertools.accumulate(w for w, _ in sources))
        total = sum(w for w, _ in sources)
        self._share = {id(s): w / total for w, s in sources}
        self.scripts = scripts  # the fixed scripts (the records' first `personas` line)
        self.generated = next((s for s in self.sources if isinstance(s, Generated)), None)

    def next(self, rng: random.Random) -> Group | None:
        """The next group to start; None when its source has none ready (the slot goes unserved)."""
        source = self.sources[0] if len(self.sources) == 1 else rng.choices(self.sources, cum_weights=self._weights)[0]
        return source.next(rng)

    async def before_step(self, qps: float, first: bool) -> None:
        """Draw ahead what AHEAD_S seconds of this rate start. Before the first step nothing
        is in flight, so the buffer is filled there and then; later, turns of the last step
        may still be in flight (a pause would lengthen their latency), so the refill task
        raises the buffer between slots."""
        if self.generated is None:
            return
        groups_per_s = qps * self._share[id(self.generated)] / max(1.0, self.generated.mean_sessions_turns)
        ahead = math.ceil(groups_per_s * AHEAD_S) + MIN_AHEAD
        if first:
            await self.generated.start(ahead)
        else:
            self.generated.raise_to(ahead)

    def figures(self) -> dict[str, Any] | None:
        """Generated groups so far: read from the drawer, group starts that found none ready
        (unserved slots: should stay 0), and why the drawer stopped if it did."""
        if self.generated is None:
            return None
        return {"drawn": self.generated.drawn, "missed": self.generated.missed, "stopped": self.generated.stopped}

    async def close(self) -> None:
        if self.generated is not None:
            await self.generated.close()


def build_mix(specs: list[SourceSpec], *, profile: str, replicas: int, seed: int, generate: GenOptions,
              metamorphic: bool, profiles: dict[str, DialogueProfile], request_params: dict[str, Any]) -> SourceMix:
    """The mix for the engine; UsageError when a source cannot be used."""
    sources: list[tuple[float, Scripts | Generated]] = []
    fixed: list[PersonaScript] = []
    for spec in specs:
        if spec.kind == GENERATED:
            problem = generate.problem()
            if problem:
                raise UsageError(f"--personas generated: {problem}")
            if profile != "chat":
                raise UsageError("--personas generated drives chat dialogues; phone-agent (autoglm) tasks come from "
                                 "persona scripts: drop --profile autoglm or pass persona files")
            sources.append((spec.weight, Generated(generate, seed, replicas, metamorphic, profiles, request_params)))
            continue
        scripts = load_scripts(spec, profile)
        clash = {s.id for s in scripts} & {s.id for s in fixed}
        if clash:
            raise UsageError(f"--personas: persona id {sorted(clash)[0]!r} comes from two sources; give each once")
        fixed += scripts
        sources.append((spec.weight, Scripts([prepare(s, profiles, request_params) for s in scripts], replicas)))
    return SourceMix(sources, fixed, profiles)


def load_sources(config: RunConfig) -> SourceMix:
    """The sessions' sources named by --personas (scripts loaded and checked, generated
    dialogues' options checked); UsageError on bad input."""
    profiles = make_profiles(config.screenshot, config.request_params, config.coord_bucket,
                                        screenshot_bytes=config.screenshot_bytes)
    seed = config.seed
    if config.segment != (0, 1):  # each instance draws its own dialogues, not the same ones N times
        index, count = config.segment
        seed = int.from_bytes(hashlib.sha256(f"convsim-dialogues:{seed}:{index}/{count}".encode()).digest()[:6], "big")
    return build_mix(parse_spec(config.personas), profile=config.profile, replicas=config.replicas, seed=seed,
                     generate=config.generate, metamorphic=config.metamorphic, profiles=profiles,
                     request_params=config.request_params)
