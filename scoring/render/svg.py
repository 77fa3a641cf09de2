"""The plots of report.html as inline SVG (no scripts, no fetches).

Plots: latency percentiles, CV, OCS and context loss against rate; latency over time with
step boundaries; context loss by how many turns back the fact was given.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any, Sequence

W, H = 560, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 44
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")

Point = tuple[float, float, float | None, float | None]  # x, y, interval low, interval high


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step) + 2) if first + i * step <= high + 1e-9]


def chart(title: str, x_label: str, y_label: str, series: Sequence[tuple[str, Sequence[Point]]],
          hlines: Sequence[tuple[float, str]] = (), vlines: Sequence[tuple[float, str]] = (),
          y_floor: float | None = 0.0, y_ceiling: float | None = None, markers: bool = True) -> str:
    """A small SVG line chart with optional interval bars and reference lines."""
    xs = [p[0] for _, pts in series for p in pts] + [x for x, _ in vlines]
    ys = [v for _, pts in series for p in pts for v in (p[1], p[2], p[3]) if v is not None] + [y for y, _ in hlines]
    if not xs or not ys:
        return f'<figure><figcaption>{escape(title)}</figcaption><p class="empty">no data</p></figure>'
    x0, x1 = min(xs), max(xs)
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    y0 = min(ys) if y_floor is None else min(y_floor, min(ys))
    y1 = max(ys) if y_ceiling is None else y_ceiling
    if y1 <= y0:
        y1 = y0 + 1
    y1 += (y1 - y0) * 0.05

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def py(y: float) -> float:
        return H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM)

    parts = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{escape(title)}">',
             f'<text x="{LEFT}" y="18" class="t">{escape(title)}</text>']
    for tick in _ticks(y0, y1):
        parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" class="g"/>'
                     f'<text x="{LEFT - 6}" y="{py(tick) + 4:.1f}" class="a" text-anchor="end">{tick:g}</text>')
    for tick in _ticks(x0, x1):
        parts.append(f'<text x="{px(tick):.1f}" y="{H - BOTTOM + 16}" class="a" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 8}" class="a" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{(TOP + H - BOTTOM) / 2}" class="a" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(TOP + H - BOTTOM) / 2})">{escape(y_label)}</text>')
    for y, label in hlines:
        parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(y):.1f}" y2="{py(y):.1f}" class="ref"/>'
                     f'<text x="{W - RIGHT - 4}" y="{py(y) - 4:.1f}" class="a" text-anchor="end">{escape(label)}</text>')
    for x, label in vlines:
        parts.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{TOP}" y2="{H - BOTTOM}" class="ref"/>'
                     f'<text x="{px(x) + 3:.1f}" y="{TOP + 10}" class="a">{escape(label)}</text>')
    for index, (name, points) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        ordered = sorted(points)
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _, _ in ordered)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        for x, y, low, high in ordered:
            if low is not None and high is not None:
                parts.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{py(low):.1f}" y2="{py(high):.1f}" '
                             f'stroke="{colour}" stroke-width="1"/>')
            if markers:
                parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"><title>'
                             f'{escape(name)}: {y:g} at {x:g}</title></circle>')
        parts.append(f'<text x="{LEFT + 8 + 120 * index}" y="{TOP - 4}" class="a" style="fill:{colour}">&#9632; {escape(name)}</text>')
    parts.append("</svg>")
    return f"<figure>{''.join(parts)}</figure>"


def _charts(card: dict[str, Any]) -> list[str]:
    steps = card["steps"]
    gates = card.get("gates") or {}

    def per_rate(key: str, field: str) -> list[Point]:
        return [(s["qps_target"], s[field][key], None, None) for s in steps if s.get(field)]

    out = [chart("Service latency vs rate", "target rate (turns/s)", "ms",
                 [(k, per_rate(k, "latency_ms")) for k in ("p50", "p95", "p99")]
                 + [("corrected p99", per_rate("p99", "corrected_latency_ms"))])]
    cv = [(s["qps_target"], s["latency_ms"]["cv"], *(s["latency_ms"].get("cv_ci95") or (None, None)))
          for s in steps if s.get("latency_ms")]
    out.append(chart("Latency CV vs rate", "target rate (turns/s)", "CV", [("CV", cv)],
                     hlines=[(0.10, "strict 0.10"), (0.25, "elastic 0.25")]))
    ocs = [(s["qps_target"], s["ocs"]["value"], *s["ocs"]["ci95"]) for s in steps if s.get("ocs")]
    out.append(chart("Output consistency (OCS) vs rate", "target rate (turns/s)", "OCS", [("OCS", ocs)],
                     hlines=[(gates["min_ocs"], f"gate {gates['min_ocs']:g}")] if gates.get("min_ocs") else [],
                     y_floor=None, y_ceiling=1.0))
    loss = [(s["qps_target"], s["context_loss"]["rate"], *s["context_loss"]["ci95"])
            for s in steps if s.get("context_loss") and s["context_loss"]["probes"]]
    flips = [(s["qps_target"], s["context_loss"]["flip_rate"], *s["context_loss"]["flip_ci95"])
             for s in steps if s.get("context_loss") and s["context_loss"]["probes"]]
    out.append(chart("Context loss vs rate", "target rate (turns/s)", "share of probes",
                     [("lost", loss), ("flipped", flips)],
                     hlines=[(gates["max_context_loss"], f"gate {gates['max_context_loss']:g}")] if gates.get("max_context_loss") else []))
    series = (card.get("series") or {})
    latency = series.get("latency") or []
    bounds = series.get("steps") or []
    out.append(chart("Latency over time (1 s bins of send time)", "seconds since start", "ms",
                     [("p50", [(b["t_s"], b["p50"], None, None) for b in latency]),
                      ("p99", [(b["t_s"], b["p99"], None, None) for b in latency])],
                     vlines=[(b["t_start_s"], f"{b['qps_target']:g}/s") for b in bounds], markers=False))
    recall = [(f"{s['qps_target']:g}/s", [(d["turns_back"], d["rate"], *d["ci95"]) for d in s["context_loss"]["by_distance"]])
              for s in steps if s.get("context_loss") and s["context_loss"]["by_distance"]]
    out.append(chart("Context loss by distance (turns since the fact was given)", "turns back", "share lost", recall))
    prompts = [(f"{s['qps_target']:g}/s max", [(r["turn"], r["max"], None, None) for r in s["prompt_tokens"]["by_turn"]])
               for s in steps if s.get("prompt_tokens")]
    if any(s.get("format") for s in steps) and prompts:
        window = next(s["prompt_tokens"]["window"] for s in steps if s.get("prompt_tokens"))
        out.append(chart("Estimated prompt tokens by turn index", "turn index", "tokens", prompts,
                         hlines=[(window, f"context window {window:,}")]))
    return out
