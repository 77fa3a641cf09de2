"""Live metrics for long runs: a Prometheus endpoint (`convsim run --metrics-port P`).

Everything but two histograms is read from the engine when scraped, so the hot path pays
nothing for it: turns by step and status (ok or the error class), slots and unserved slots,
the achieved rate of the current step, turns in flight, live sessions, store conflicts and
store errors by class. Turn latency and time to first token are histograms observed as each
turn is recorded (a few microseconds). Every series is labelled by run and segment (a
`--workers` process or a `--segment` instance serves its own port; sum them in PromQL,
e.g. `sum by (step) (rate(convsim_turns_total[30s]))`).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from simulator.engine.loop import Engine
    from simulator.engine.turn import TurnState

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)


class EngineMetrics(Collector):
    """The engine's figures as Prometheus metrics, read at scrape time."""

    def __init__(self, engine: Engine, run_id: str, segment: str) -> None:
        self.engine, self.labels = engine, (run_id, segment)
        self.registry = CollectorRegistry()
        names = ("run", "segment", "step")
        self.latency = Histogram("convsim_turn_latency_seconds", "Time from send to the last byte of ok turns.",
                                 names, buckets=LATENCY_BUCKETS, registry=self.registry)
        self.ttft = Histogram("convsim_ttft_seconds", "Time to the first content byte of ok streamed turns.", names,
                              buckets=LATENCY_BUCKETS, registry=self.registry)
        self.statuses: Counter[tuple[int, str]] = Counter()  # (step, status) -> turns recorded
        self.registry.register(self)

    def observe(self, t: TurnState) -> None:
        """A recorded turn (called by the engine as it accounts for it)."""
        self.statuses[(t.step, t.status)] += 1
        completion = t.completion
        if t.status == "ok" and completion is not None:
            labels = (*self.labels, str(t.step))
            self.latency.labels(*labels).observe(completion.t_done - completion.t_sent)
            if completion.t_first is not None:
                self.ttft.labels(*labels).observe(completion.t_first - completion.t_sent)

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        start_http_server(port, host, registry=self.registry)

    def collect(self) -> Iterator[Any]:
        engine, (run, segment) = self.engine, self.labels
        books, progress = engine.books, engine.progress
        turns = CounterMetricFamily("convsim_turns", "Turns recorded, by step and status (ok or the error class).",
                                    labels=["run", "segment", "step", "status"])
        for (index, status), count in sorted(self.statuses.items()):
            turns.add_metric([run, segment, str(index), status], count)
        yield turns
        step = str(books.step)
        slots = CounterMetricFamily("convsim_slots", "Turn slots of the current step.", labels=["run", "segment", "step"])
        slots.add_metric([run, segment, step], books.counters.slots)
        yield slots
        unserved = CounterMetricFamily("convsim_unserved_slots", "Slots no session could take, current step.",
                                       labels=["run", "segment", "step"])
        unserved.add_metric([run, segment, step], books.counters.unserved)
        yield unserved
        rate = GaugeMetricFamily("convsim_achieved_rate", "Turns sent per second in the current step so far.",
                                 labels=["run", "segment", "step"])
        elapsed = engine.clock() - progress.step_started
        sent_in_step = books.counters.slots - books.counters.unserved
        rate.add_metric([run, segment, step], sent_in_step / elapsed if elapsed > 0 and progress.step >= 0 else 0.0)
        yield rate
        for name, help_text, value in (("convsim_in_flight", "Turns waiting on the target.", progress.in_flight),
                                       ("convsim_live_sessions", "Live sessions.", books.live),
                                       ("convsim_target_rate", "The current step's rate (this segment's share).",
                                        progress.qps_target)):
            gauge = GaugeMetricFamily(name, help_text, labels=["run", "segment"])
            gauge.add_metric([run, segment], value)
            yield gauge
        stats = engine.store.stats
        conflicts = CounterMetricFamily("convsim_store_conflicts", "Session writes that met another writer's version.",
                                        labels=["run", "segment"])
        conflicts.add_metric([run, segment], stats.conflicts)
        yield conflicts
        errors = CounterMetricFamily("convsim_store_errors", "Failed store operations, by class.",
                                     labels=["run", "segment", "class"])
        for kind, count in stats.errors().items():
            errors.add_metric([run, segment, kind], count)
        yield errors
