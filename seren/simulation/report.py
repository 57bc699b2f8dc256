"""The simulation report: one HTML page (per-round curves per metric per arm as inline SVG, the lift
table with 95% intervals, the world sweep, the replay) plus the JSON it was rendered from."""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from seren.io import write_json, write_text
from seren.paths import reports_dir

COLORS = ["#444444", "#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b"]

TEMPLATE = jinja2.Template(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.pos { color: #176117; } .neg { color: #a11; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
.chart { border: 1px solid #ddd; padding: 4px; }
.legend span { margin-right: 1em; }
</style></head><body>
<h1 id="title">{{ title }}</h1>
<p id="setup">{{ setup }}</p>
<p id="judge"><b>Judge behind the serendipity arms:</b> {{ judge }}. <b>Main recommender:</b> {{ main }}.</p>
{% if table %}
<h2 id="lift-table">Lift over control (95% bootstrap interval over users)</h2>
<table><tr><th>arm</th>{% for m in metrics %}<th>{{ m }}</th>{% endfor %}<th>item exposure Gini</th></tr>
{% for arm, row in table %}<tr><td>{{ arm }}</td>{% for cell in row.cells %}<td class="{{ cell.cls }}">{{ cell.text }}</td>{% endfor %}<td>{{ row.gini }}</td></tr>{% endfor %}
</table>
<p>Values: population ratio (exposure share, discovered share) or mean per user (clicks, coverage, entropy);
lifts are relative to control, users paired (same world, same random stream).</p>
{% endif %}
{% if versus %}<h2 id="versus">seren against the other surprise arms</h2>
<table><tr><th>comparison</th>{% for m in versus_metrics %}<th>{{ m }}</th>{% endfor %}</tr>
{% for name, cells in versus %}<tr><td>{{ name }}</td>{% for c in cells %}<td class="{{ c.cls }}">{{ c.text }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}
{% if charts %}<h2 id="curves">Per-round curves</h2>
<div class="legend">{% for arm, color in legend %}<span style="color: {{ color }}">&#9632; {{ arm }}</span>{% endfor %}</div>
<div class="charts">{% for c in charts %}<div class="chart">{{ c }}</div>{% endfor %}</div>{% endif %}
{% if sweep %}<h2 id="sweep">World sweep (seren vs control; seren vs random_unexpected)</h2>
<table><tr><th>hidden sibling share</th><th>curiosity (mean)</th>{% for m in sweep_metrics %}<th>{{ m }}</th>{% endfor %}<th>vs random: ser. clicks</th><th>acceptance met</th></tr>
{% for r in sweep %}<tr><td>{{ r.share }}</td><td>{{ r.cur }}</td>{% for c in r.cells %}<td class="{{ c.cls }}">{{ c.text }}</td>{% endfor %}<td class="{{ r.vs.cls }}">{{ r.vs.text }}</td><td>{{ r.ok }}</td></tr>{% endfor %}
</table>{% endif %}
{% if replay %}<h2 id="replay">MovieLens replay ({{ replay_note }})</h2>
<table><tr><th>arm</th>{% for m in replay_metrics %}<th>{{ m }} (95% CI)</th>{% endfor %}</tr>
{% for arm, cells in replay %}<tr><td>{{ arm }}</td>{% for c in cells %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}
<p>Written {{ when }}.</p>
</body></html>
"""
)


def _pct(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 100:+.1f}%"


def _lift_cell(cell: dict[str, Any]) -> dict[str, str]:
    if "lift" not in cell:
        return {"text": f"{cell['value']:.3f}", "cls": ""}
    lo, hi = cell["ci_low"], cell["ci_high"]
    cls = "pos" if lo > 0 else "neg" if hi < 0 else ""
    return {"text": f"{cell['value']:.3f} ({_pct(cell['lift'])} [{_pct(lo)}, {_pct(hi)}])", "cls": cls}


def svg_chart(title: str, series: dict[str, list[float]], colors: dict[str, str], w: int = 360, h: int = 220) -> str:
    """A line chart of per-round values, one polyline per arm (no plotting dependency)."""
    vals = [v for s in series.values() for v in s if v is not None and math.isfinite(v)]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    hi = hi if hi > lo else lo + 1.0
    n = max(len(s) for s in series.values())
    pl, pr, pt, pb = 48, 10, 24, 28

    def xy(i: int, v: float) -> str:
        x = pl + (w - pl - pr) * (i / max(1, n - 1))
        y = pt + (h - pt - pb) * (1 - (v - lo) / (hi - lo))
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{title}">',
        f'<text x="{w / 2}" y="15" text-anchor="middle" font-size="13">{title}</text>',
        f'<line x1="{pl}" y1="{h - pb}" x2="{w - pr}" y2="{h - pb}" stroke="#999"/>',
        f'<line x1="{pl}" y1="{pt}" x2="{pl}" y2="{h - pb}" stroke="#999"/>',
        f'<text x="{pl - 4}" y="{pt + 4}" text-anchor="end" font-size="10">{hi:.3g}</text>',
        f'<text x="{pl - 4}" y="{h - pb}" text-anchor="end" font-size="10">{lo:.3g}</text>',
        f'<text x="{(w + pl) / 2}" y="{h - 6}" text-anchor="middle" font-size="10">round 1..{n}</text>',
    ]
    for arm, s in series.items():
        pts = " ".join(xy(i, v) for i, v in enumerate(s) if v is not None and math.isfinite(v))
        parts.append(
            f'<polyline fill="none" stroke="{colors[arm]}" stroke-width="1.8" points="{pts}"><title>{arm}</title></polyline>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(
    result: dict[str, Any] | None,
    sweep: list[dict[str, Any]] | None = None,
    replay: dict[str, Any] | None = None,
    title: str = "seren simulation",
) -> str:
    """The report page for a simulation result (and optionally a sweep and a replay)."""
    from seren.simulation.engine import METRICS

    ctx: dict[str, Any] = {"title": title, "when": datetime.now(UTC).isoformat(timespec="seconds"), "metrics": METRICS}
    if result is not None:
        c = result["config"]
        ctx["setup"] = (
            f"{c['n_users']} users, {c['n_items']} items, {c['rounds']} rounds, slate k={c['k']}, retrain every "
            f"{c['retrain_every']} rounds, {c['n_candidates']} serendipity candidates per user; world: hidden sibling "
            f"share {c['hidden_sibling_share']}, mean curiosity {result['world']['curiosity_mean']:.2f}; seed {c['seed']}."
        )
        ctx["judge"] = result["judge_label"]
        ctx["main"] = result["main_recommender"]
        arms = list(result["table"])
        colors = {a: COLORS[i % len(COLORS)] for i, a in enumerate(arms)}
        ctx["legend"] = list(colors.items())
        ctx["table"] = [
            (
                a,
                {
                    "cells": [_lift_cell(result["table"][a][m]) for m in METRICS],
                    "gini": f"{result['item_exposure_gini'][a]:.3f}",
                },
            )
            for a in arms
        ]
        names = sorted({m for r in result["per_round"].values() for m in r})
        ctx["charts"] = [
            svg_chart(m, {a: result["per_round"][a][m] for a in arms}, colors)
            for m in names
            if m in METRICS or "gini" in m
        ]
        vm = ["serendipitous_clicks", "hidden_interests_discovered", "total_clicks"]
        ctx["versus_metrics"] = vm
        ctx["versus"] = [
            (f"seren vs {o}", [_lift_cell({"value": float("nan"), **v[m]}) | {"text": _ci(v[m])} for m in vm])
            for o, v in result.get("seren_vs", {}).items()
        ]
    else:
        ctx.update(setup="", judge="-", main="-", table=None, charts=None, versus=None)
    if sweep:
        sm = ["serendipitous_clicks", "hidden_interests_discovered", "total_clicks"]
        ctx["sweep_metrics"] = sm
        ctx["sweep"] = [
            {
                "share": r["hidden_sibling_share"],
                "cur": f"{r['curiosity_mean']:.2f}",
                "cells": [{"text": _ci(r["table"]["seren"][m]), "cls": _cls(r["table"]["seren"][m])} for m in sm],
                "vs": {
                    "text": _ci(r["seren_vs"]["random_unexpected"]["serendipitous_clicks"]),
                    "cls": _cls(r["seren_vs"]["random_unexpected"]["serendipitous_clicks"]),
                },
                "ok": f"{sum(r['acceptance'].values())}/{len(r['acceptance'])}",
            }
            for r in sweep
            if "seren" in r["table"]
        ]
    if replay:
        rm = list(replay["metrics"])
        ctx["replay_metrics"] = rm
        ctx["replay_note"] = replay["note"]
        ctx["replay"] = [
            (a, [f"{v[m]['mean']:.3f} [{v[m]['ci_low']:.3f}, {v[m]['ci_high']:.3f}]" for m in rm])
            for a, v in replay["arms"].items()
        ]
    return TEMPLATE.render(**ctx)


def _ci(cell: dict[str, Any]) -> str:
    return f"{_pct(cell['lift'])} [{_pct(cell['ci_low'])}, {_pct(cell['ci_high'])}]"


def _cls(cell: dict[str, Any]) -> str:
    return "pos" if cell["ci_low"] > 0 else "neg" if cell["ci_high"] < 0 else ""


def lift_text(result: dict[str, Any]) -> str:
    """Plain-text lift table (CLI, demo): value and lift [95% CI] per arm and metric."""
    from seren.simulation.engine import METRICS

    short = {
        "serendipitous_exposure_share": "ser.exposure",
        "serendipitous_clicks": "ser.clicks",
        "total_clicks": "clicks",
        "hidden_interests_discovered": "hidden found",
        "category_coverage": "coverage",
        "consumption_entropy": "entropy",
    }
    rows = [("arm", *[short[m] for m in METRICS])]
    for arm, row in result["table"].items():
        rows.append(
            (
                arm,
                *[
                    f"{_pct(row[m]['lift'])} [{_pct(row[m]['ci_low'])},{_pct(row[m]['ci_high'])}]"
                    if "lift" in row[m]
                    else f"{row[m]['value']:.3g}"
                    for m in METRICS
                ],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(wd) for c, wd in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append(f"judge: {result['judge_label']}; main recommender: {result['main_recommender']}")
    for other, v in result.get("seren_vs", {}).items():
        lines.append(
            f"seren vs {other}: ser.clicks {_ci(v['serendipitous_clicks'])}, hidden found {_ci(v['hidden_interests_discovered'])}"
        )
    return "\n".join(lines)


def write_report(
    result: dict[str, Any] | None,
    out_dir: str | os.PathLike[str] | None = None,
    name: str = "simulation",
    sweep: list[dict[str, Any]] | None = None,
    replay: dict[str, Any] | None = None,
    machine: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write <out_dir>/<name>.html and .json (default out_dir: SEREN_HOME/reports).

    `machine` (a benchmark's load record) goes into the JSON so a figure always travels with how
    quiet the machine was when it was taken.
    """
    out = Path(out_dir) if out_dir else reports_dir()
    payload = {"result": result, "sweep": sweep, "replay": replay}
    if machine is not None:
        payload["machine"] = machine
    return {
        "json": write_json(out / f"{name}.json", payload),
        "html": write_text(out / f"{name}.html", render_html(result, sweep, replay)),
    }
