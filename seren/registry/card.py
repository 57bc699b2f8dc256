"""The model card written into every registered version (when the caller does not bring one).

Generated from what the registry knows for sure: the files and their hashes, the evaluation
metrics, the validation gates and the producer's metadata, so the card can never disagree with
the manifest it sits beside.
"""

from __future__ import annotations

from typing import Any

PRIMARY_METRICS = ("roc_auc", "pr_auc", "f1", "ece", "hit_1", "ndcg_3", "brier")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "-" if v is None else str(v)


def model_card(
    model: str,
    version: int,
    metrics: dict[str, float],
    validation: dict[str, Any] | None,
    files: dict[str, dict[str, Any]],
    metadata: dict[str, Any] | None = None,
) -> str:
    meta = metadata or {}
    lines = [
        f"# {model} v{version}",
        "",
        "SerenGPT serendipity judge: given a user's cognition profile and a candidate item, P(Yes) at the "
        "answer position is the probability that the item is a pleasant surprise for this user "
        "(SERAL, KDD'25). Intended for nearline scoring of candidates; not for decisions about people.",
        "",
        "## Provenance",
        "",
    ]
    for key in sorted(meta):
        lines.append(f"- {key}: {_fmt(meta[key])}")
    if not meta:
        lines.append("- (no producer metadata given)")
    lines += ["", "## Evaluation (held-out users)", ""]
    shown = [k for k in PRIMARY_METRICS if k in metrics] or sorted(metrics)[:12]
    if shown:
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {_fmt(metrics[k])} |" for k in shown]
    else:
        lines.append("No evaluation report was registered: promotion past a champion will be refused.")
    lines += ["", "## Validation (exported graph vs torch)", ""]
    if validation:
        lines.append(f"Overall: **{'pass' if validation.get('passed') else 'FAIL'}**")
        lines += ["", "| gate | value | threshold | status |", "|---|---|---|---|"]
        for name, g in sorted((validation.get("gates") or {}).items()):
            lines.append(f"| {name} | {_fmt(g.get('value'))} | {_fmt(g.get('threshold'))} | {g.get('status', '-')} |")
    else:
        lines.append("No validation report was registered: this version cannot be promoted.")
    lines += ["", "## Files", "", "| file | bytes | sha256 |", "|---|---|---|"]
    for rel, f in sorted(files.items()):
        lines.append(f"| {rel} | {f['size']} | {f['sha256'][:16]} |")
    lines += [
        "",
        "## Limitations",
        "",
        "Scores are calibrated only on the distribution the evaluation used; judgments drift as the catalogue "
        "and user behaviour change (see the monitoring reports). The model can reproduce biases of its teacher "
        "and of the behaviour labels.",
        "",
    ]
    return "\n".join(lines)
