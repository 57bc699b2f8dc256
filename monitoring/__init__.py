"""Monitoring: Evidently drift and quality reports on SerenGPT judgments, gates, and the retraining trigger.

Light imports only here (the judgment schema and its readers/writers): Evidently takes seconds to
import, and the nearline job writes judgments without needing it. The report side lives in
`monitoring.drift` (`run_drift`), the Evidently calls in `monitoring.evidently_api` (the only module
that imports Evidently), the gates in `monitoring.gates`, the trigger in `monitoring.retrain`.
"""

from monitoring.judgments import (
    CATEGORICAL_COLUMNS,
    DRIFT_COLUMNS,
    FEEDBACK,
    JUDGMENT_COLUMNS,
    NUMERICAL_COLUMNS,
    USER_COLUMNS,
    append_judgments,
    attach_feedback,
    build_judgments,
    default_current_dir,
    default_reference_path,
    drift_frame,
    in_window,
    load_judgments,
    parse_end,
    parse_window,
    validate_judgments,
    write_reference,
)

__all__ = [
    "CATEGORICAL_COLUMNS",
    "DRIFT_COLUMNS",
    "FEEDBACK",
    "JUDGMENT_COLUMNS",
    "NUMERICAL_COLUMNS",
    "USER_COLUMNS",
    "append_judgments",
    "attach_feedback",
    "build_judgments",
    "drift_frame",
    "default_current_dir",
    "default_reference_path",
    "in_window",
    "load_judgments",
    "parse_end",
    "parse_window",
    "validate_judgments",
    "write_reference",
]
