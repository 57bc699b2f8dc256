"""The reports directory: one folder per run (Evidently HTML + JSON, summary.json, a run page) and
an index.html listing every run, newest first, with its gate status.

The pages are small Jinja2 templates (autoescaped); the heavy lifting stays in Evidently's own
HTML files, which the run page links to.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jinja2

from seren.io import write_text
from seren.paths import evidently_workspace_dir, reports_dir

SUMMARY = "summary.json"
RUN_PAGE = "index.html"
INDEX = "index.html"

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["num"] = lambda v, d=4: "—" if v is None else (f"{v:.{d}g}" if isinstance(v, float) else str(v))

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222} table{border-collapse:collapse;margin:1rem 0}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left} th{background:#f3f3f3}
.pass{color:#1a7f37;font-weight:600} .fail{color:#cf222e;font-weight:600} .no_data{color:#9a6700;font-weight:600}
.skipped{color:#777}
"""

_RUN = _ENV.from_string(
    """<!doctype html>
<html><head><meta charset="utf-8"><title>seren drift run {{ r.run_id }}</title><style>{{ style }}</style></head>
<body>
<h1>Judgment monitoring run {{ r.run_id }}</h1>
<p id="status">Status: <span class="{{ r.status }}">{{ r.status }}</span>{% if r.message %} — {{ r.message }}{% endif %}</p>
<p>Window: {{ r.window.start or "beginning" }} → {{ r.window.end }} ({{ r.window.length }}).
Rows: reference {{ r.rows.reference }}, current {{ r.rows.current }}. <a href="../{{ index }}">All runs</a></p>
<h2 id="gates">Gates</h2>
<table><tr><th>gate</th><th>value</th><th>passes when</th><th>result</th></tr>
{% for g in r.gates %}
<tr><td>{{ g.name }}</td><td>{{ g.value|num }}</td><td>{{ g.op }} {{ g.threshold }}</td>
<td>{% if g.skipped %}<span class="skipped">skipped: {{ g.skipped }}</span>{% elif g.passed %}<span class="pass">pass</span>{% else %}<span class="fail">fail</span>{% endif %}</td></tr>
{% endfor %}
</table>
{% if r.columns %}
<h2 id="judgment-drift">Judgment drift</h2>
<table><tr><th>column</th><th>test</th><th>score</th><th>threshold</th><th>drift</th><th>reference mean</th><th>current mean</th></tr>
{% for c in r.columns %}
<tr><td>{{ c.column }}</td><td>{{ c.method }}</td><td>{{ c.score|num }}</td><td>{{ c.threshold|num }}</td>
<td class="{{ 'fail' if c.drifted else 'pass' }}">{{ 'drifted' if c.drifted else 'stable' }}</td>
<td>{{ c.reference_mean|num }}</td><td>{{ c.current_mean|num }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if r.quality %}
<h2 id="judgment-quality">Judgment quality vs feedback</h2>
<table><tr><th></th><th>precision</th><th>recall</th><th>rows with feedback</th></tr>
{% for side, q in r.quality.items() %}
<tr><td>{{ side }}</td><td>{{ q.precision|num }}</td><td>{{ q.recall|num }}</td><td>{{ q.rows }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if r.recsys %}
<h2 id="recommender-quality">Recommender quality (top {{ r.recsys_k }})</h2>
<table><tr><th></th>{% for key in r.recsys.current %}<th>{{ key }}</th>{% endfor %}</tr>
{% for side, vals in r.recsys.items() %}
<tr><td>{{ side }}</td>{% for key in r.recsys.current %}<td>{{ vals[key]|num }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% endif %}
{% if r.files %}
<h2 id="reports">Evidently reports</h2>
<ul>{% for name, f in r.files.items() %}<li><a href="{{ f.html }}">{{ name }}</a> (<a href="{{ f.json }}">json</a>)</li>{% endfor %}</ul>
{% endif %}
{% if r.workspace %}<p>Evidently workspace: <code>evidently ui --workspace {{ r.workspace.path }}</code></p>{% endif %}
</body></html>
"""
)

_INDEX = _ENV.from_string(
    """<!doctype html>
<html><head><meta charset="utf-8"><title>seren drift reports</title><style>{{ style }}</style></head>
<body>
<h1>seren judgment monitoring: {{ runs|length }} run(s)</h1>
<table id="runs"><tr><th>run</th><th>status</th><th>window end</th><th>rows ref / cur</th><th>drift share</th>
<th>score PSI</th><th>score K-S p</th><th>failed gates</th><th>reports</th></tr>
{% for r in runs %}
<tr><td><a href="{{ r.run_id }}/{{ run_page }}">{{ r.run_id }}</a></td><td class="{{ r.status }}">{{ r.status }}</td>
<td>{{ r.window.end }}</td><td>{{ r.rows.reference }} / {{ r.rows.current }}</td>
<td>{{ r.drift_share|num }}</td><td>{{ r.score_psi|num }}</td><td>{{ r.score_ks_pvalue|num }}</td>
<td>{{ r.gates|rejectattr('passed')|map(attribute='name')|join(', ') }}</td>
<td>{% for name, f in r.files.items() %}<a href="{{ r.run_id }}/{{ f.html }}">{{ name }}</a> {% endfor %}</td></tr>
{% endfor %}
</table>
</body></html>
"""
)


def default_reports_dir() -> Path:
    return reports_dir()


def default_workspace() -> Path:
    return evidently_workspace_dir()


def render_run(summary: dict[str, Any]) -> str:
    return _RUN.render(r=summary, style=_STYLE, index=INDEX)


def list_runs(reports_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Summaries of the runs under reports_dir, newest first (unreadable ones skipped)."""
    runs = []
    for f in Path(reports_dir).glob(f"*/{SUMMARY}"):
        if f.parent.name.startswith("."):
            continue  # a run still being written (atomic_dir's temp folder)
        try:
            runs.append(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(runs, key=lambda r: r.get("run_id", ""), reverse=True)


def write_index(reports_dir: str | os.PathLike[str]) -> Path:
    """(Re)write reports_dir/index.html from every run's summary.json."""
    return write_text(
        Path(reports_dir) / INDEX, _INDEX.render(runs=list_runs(reports_dir), style=_STYLE, run_page=RUN_PAGE)
    )
