"""Nearline's settings, defined once.

`NearlineConfig` is the one definition of what a nearline run reads and how much it does: the
nearline components' inputs (components/nearline), the pipeline's parameters (pipelines/nearline)
and the `seren nearline run` options (generated from the fields, seren/commands/_model_options.py)
all carry exactly these fields with these defaults (tests/nearline/test_config.py checks it).
KFP parameters have no None, so an optional setting's default is "" or 0 and means "the documented
default" (resolved by `seren.nearline.sources.resolve`, never by the callers).

Validation lives here: ranges and choices fail at construction with one line
(`error: invalid nearline setting: ... Fix: ...`, seren.config.StageConfig), durations go through seren.durations.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import PrivateAttr, field_validator

from seren.config import StageConfig
from seren.config import option as _opt
from seren.durations import parse_duration
from seren.errors import ConfigError

# Test/ops seam: seconds to sleep after each Triton batch. Production use: throttle a nearline
# job that shares Triton with online traffic; tests use it to kill a run mid-scoring.
BATCH_DELAY_ENV = "SEREN_NEARLINE_BATCH_DELAY_S"
DEFAULT_TRITON_URL = "127.0.0.1:8000"
BASE_MODEL = "smollm2"  # tokenizer of a run with neither --model nor --environment


class NearlineConfig(StageConfig):
    """What one nearline run reads and how much it does (see the module docstring)."""

    stage: ClassVar[str] = "nearline"

    dataset_dir: str = _opt(
        "", "Dataset directory; its interactions are the event log (default: the exploration bundle's).", "--data", "-d"
    )
    environment: str = _opt(
        "",
        "Registry environment (dev, staging, prod) whose deployed SerenGPT version supplies the tokenizer, "
        "token budget, prompt recipe and calibration, and whose Triton scores (default: none, use --model).",
        "--environment",
        "-e",
    )
    model: str = _opt(
        "",
        "SerenGPT model dir (tokenizer, token budget, calibration from its card) or a base model name; with "
        "--environment it must agree with the deployed card (default: the deployed version, else smollm2).",
    )
    token_budget: int = _opt(0, "Profile tokens (0: the model card's).")
    triton_url: str = _opt(
        "",
        f"Triton serving the serengpt ensemble (default: the environment's, else $SEREN_TRITON_URL, else {DEFAULT_TRITON_URL}).",
        "--url",
    )
    protocol: Literal["http", "grpc"] = _opt("http", "http or grpc.")
    scoring: Literal["packed", "pair"] = _opt(
        "packed", "packed: one request row per user (serengpt_packed); pair: one per (user, item) (serengpt)."
    )
    exploration_dir: str = _opt(
        "",
        "Exploration bundle: clusters/, pair_table.parquet, seqrec/, exploration.json (default: $SEREN_HOME/exploration).",
        "--exploration",
    )
    clusters_dir: str = _opt("", "Override the bundle's clusters/.", "--clusters", hidden=True)
    pair_table: str = _opt("", "Override the bundle's pair_table.parquet.", "--pair-table", hidden=True)
    seqrec_dir: str = _opt("", "Override the bundle's seqrec/.", "--seqrec", hidden=True)
    k_main: int = _opt(20, "Main slate size (unrestricted recommender).", ge=1)
    k_explore: int = _opt(10, "Exploration slate size (novel clusters only).", ge=0)
    n_novel: int = _opt(3, "Novel clusters taken from the pair table.", ge=1)
    top_n: int = _opt(10, "SerenGPT candidates kept per user.", ge=1)
    threshold: float = _opt(
        -1.0,
        "Minimum calibrated SerenGPT score kept and judged serendipitous (-1: the model card's decision "
        "threshold, rate-matched to the validation positive rate; 0.5 for a card without one).",
        ge=-1.0,
        le=1.0,
    )
    batch_size: int = _opt(64, "(profile, item) pairs per Triton request.", ge=1)
    batch_delay_s: float = _opt(
        0.0, f"Seconds to sleep after each Triton batch (0: ${BATCH_DELAY_ENV} or none).", hidden=True, ge=0.0
    )
    timeout_s: float = _opt(30.0, "Triton request timeout (s).", "--timeout", gt=0.0)
    retries: int = _opt(3, "Triton retries on transient errors.", ge=0)
    feast_target: str = _opt("", "Feast target (default: $SEREN_FEAST_TARGET or local).", "--target", "-t")
    feast_data_dir: str = _opt("", "Feature data dir (default: $SEREN_HOME/features).", "--features-dir")
    state_uri: str = _opt(
        "", "Watermark location (default: <features dir>/nearline; gs://bucket/prefix in production).", "--state"
    )
    judgments_dir: str = _opt(
        "", "Judgments parts dir for monitoring (default: $SEREN_HOME/monitoring/judgments; 'none').", "--judgments"
    )
    initial_lookback: str = _opt(
        "", "First run only (no watermark yet): refresh users active in this span before the newest event (1d, 6h)."
    )

    # what `resolve` found (the deployed version, the exploration bundle): recorded in the run summary
    _sources: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("token_budget")
    @classmethod
    def _budget(cls, v: int) -> int:
        if v and v < 8:
            raise ValueError("must be 0 (the model card's) or >= 8")
        return v

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v: float) -> float:
        if v < 0 and v != -1.0:
            raise ValueError("must be -1 (the model card's decision threshold) or between 0 and 1")
        return v

    @field_validator("initial_lookback")
    @classmethod
    def _lookback(cls, v: str) -> str:
        v = (v or "").strip()
        if v:
            parse_duration(v, flag="initial lookback")  # ConfigError (one line) passes through
        return v

    def lookback(self) -> pd.Timedelta | None:
        """The first run's lookback, None when every user is refreshed."""
        return (
            pd.Timedelta(parse_duration(self.initial_lookback, flag="initial lookback"))
            if self.initial_lookback
            else None
        )

    def batch_delay(self) -> float:
        if self.batch_delay_s:
            return float(self.batch_delay_s)
        raw = os.environ.get(BATCH_DELAY_ENV, "").strip()
        try:
            return max(0.0, float(raw)) if raw else 0.0
        except ValueError:
            raise ConfigError(f"{BATCH_DELAY_ENV}={raw!r} is not a number", "set it to seconds, e.g. 0.5") from None

    @property
    def sources(self) -> dict[str, Any]:
        """What `seren.nearline.sources.resolve` resolved: scorer (deployed version or model dir) and
        exploration bundle (path, created, pair table hash)."""
        return self._sources

    @property
    def scorer_dir(self) -> str:
        """The model whose card prompts follow: the resolved one (the deployed version's with an
        environment), else `model`, else the base model."""
        return str(self._sources.get("scorer", {}).get("model_dir") or self.model or BASE_MODEL)

    def resolve(self) -> NearlineConfig:
        """Fill the "" defaults from the registry, the exploration bundle and the environment, and check
        the paths (seren.nearline.sources.resolve). Idempotent; returns self."""
        from seren.nearline.sources import resolve

        return resolve(self)
