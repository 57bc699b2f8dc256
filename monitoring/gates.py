"""Pass/fail gates on a monitoring run: when do judgments count as drifted enough to retrain?

Four gates, each configurable (CLI options, the pipeline's `gates` dict, or `Gates(...)`):

* drift_share: share of the judgment columns Evidently flags as drifted (each column with its
  own test: K-S / Z-test up to 1000 rows, Wasserstein / Jensen-Shannon above) must stay below
  `max_drift_share` (Evidently's own dataset-drift rule: drifted when share >= threshold);
* score_psi: population stability index of the score distribution < `max_score_psi`
  (0.2 is the usual "significant shift" line);
* score_ks_pvalue: two-sample K-S p-value of the score >= `min_score_ks_pvalue`;
* precision_drop: reference precision of "serendipitous" against feedback minus the current
  one <= `max_precision_drop` (skipped unless both windows have feedback).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seren.errors import ConfigError


class Gates(BaseModel):
    """Thresholds of the gates; every field has the default used by `seren drift` and the pipeline."""

    model_config = ConfigDict(extra="forbid")

    max_drift_share: float = Field(0.5, gt=0, le=1, description="fail when share of drifted columns >= this")
    max_score_psi: float = Field(0.2, gt=0, description="fail when PSI of the score >= this")
    min_score_ks_pvalue: float = Field(0.01, ge=0, lt=1, description="fail when K-S p-value of the score < this")
    max_precision_drop: float = Field(0.1, ge=0, le=1, description="fail when precision falls by more than this")
    min_feedback_rows: int = Field(20, ge=1, description="judgments with known feedback needed to use precision")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Gates:
        """One ConfigError line for an unknown or out-of-range gate (e.g. from the pipeline's `gates` dict)."""
        try:
            return cls(**(values or {}))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ())) or "gates"
            raise ConfigError(
                f"gate {where}: {err.get('msg', 'invalid')}", f"known gates: {', '.join(cls.model_fields)}"
            ) from None


def gate(name: str, value: float | None, threshold: float, op: str, skipped: str | None = None) -> dict[str, Any]:
    """One gate row. op is the *passing* condition: '<', '<=' or '>='."""
    if skipped is not None or value is None:  # e.g. a statistic Evidently could not compute on these rows
        reason = skipped or "not computable on these judgments"
        return {"name": name, "value": None, "threshold": threshold, "op": op, "passed": True, "skipped": reason}
    ok = {"<": value < threshold, "<=": value <= threshold, ">=": value >= threshold}[op]
    return {"name": name, "value": float(value), "threshold": threshold, "op": op, "passed": bool(ok), "skipped": None}


def evaluate(
    gates: Gates,
    drift_share: float,
    score_psi: float,
    score_ks_pvalue: float,
    precision: dict[str, float | None] | None,
) -> list[dict[str, Any]]:
    """Gate rows for one run; `precision` = {"reference": p or None, "current": p or None}."""
    rows = [
        gate("drift_share", drift_share, gates.max_drift_share, "<"),
        gate("score_psi", score_psi, gates.max_score_psi, "<"),
        gate("score_ks_pvalue", score_ks_pvalue, gates.min_score_ks_pvalue, ">="),
    ]
    ref = (precision or {}).get("reference")
    cur = (precision or {}).get("current")
    if ref is None or cur is None:
        missing = " and ".join(w for w, v in (("reference", ref), ("current", cur)) if v is None)
        rows.append(
            gate(
                "precision_drop",
                None,
                gates.max_precision_drop,
                "<=",
                skipped=f"no feedback for the {missing} judgments (need >= {gates.min_feedback_rows} with feedback)",
            )
        )
    else:
        rows.append(gate("precision_drop", ref - cur, gates.max_precision_drop, "<="))
    return rows
