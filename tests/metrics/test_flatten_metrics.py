"""seren.metrics.flatten_metrics: the one naming scheme of every KFP Metrics artifact."""

from __future__ import annotations

import numpy as np

from seren.metrics import flatten_metrics


def test_nesting_joins_with_dot_and_metric_names_stay_as_written() -> None:
    nested = {
        "sft_ipo": {"hit@1": 0.5, "ndcg@3": 0.25, "calibration": {"ece": 0.125}},
        "roc_auc": 0.75,
        "rewards/chosen": 2,
        "kept": True,
        "dropped": False,
        "n": np.int64(7),
        "loss": np.float32(0.5),
        "nan": float("nan"),
        "none": None,
        "name": "SFT",
        "curve": [1.0, 2.0],
    }
    assert flatten_metrics(nested) == {
        "sft_ipo.hit@1": 0.5,
        "sft_ipo.ndcg@3": 0.25,
        "sft_ipo.calibration.ece": 0.125,
        "roc_auc": 0.75,
        "rewards.chosen": 2.0,
        "kept": 1.0,
        "dropped": 0.0,
        "n": 7.0,
        "loss": 0.5,
    }
    assert all(type(v) is float for v in flatten_metrics(nested).values())
    assert flatten_metrics({"a": 1}, prefix="train.") == {"train.a": 1.0}
