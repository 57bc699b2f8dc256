"""Labeling and enrichment ("collaborative data intervention", SERAL stage 2 input).

Three label sources are merged per (user, item), each with its source and confidence recorded:

* behaviour — events after the profile cutoff, judged against the profile's history: a positive
  on an item outside the engaged subcategories is serendipitous (1); a positive inside them is
  relevant but expected (0); a skip / low rating on an unexpected item is not serendipitous (0);
* human — the dataset's ground-truth labels and/or a survey CSV with a 1-5 Likert serendipity
  column;
* teacher — an LLM behind a TextBackend that answers Yes/No plus a one-sentence rationale.

Precedence is human > teacher > behaviour (the winning source and all contributing sources are
recorded); a teacher rationale is kept whenever the teacher agrees with the final label.

Leakage: profiles for labeling must be built with `as_of` = a cutoff before the labeled events
(`seren.profiles.io.labeling_cutoffs`); profiles built on the whole history are refused. A
profile table may hold several snapshots per user (`build_profile_snapshots`), with global or
per-user cutoffs: a user's snapshot k labels that user's events in [cutoff_k, cutoff_k+1),
judged against the profile as of cutoff_k, so every label is about behaviour its prompt has
not seen. Dataset labels go to the window of their timestamp; survey rows (no timestamp) and
undated labels go to the user's latest snapshot.

Split by concern: `sources` (behaviour, dataset and survey labels, snapshot windows), `teacher`
(the LLM source and its reply parser), `merge` (precedence and provenance), `training` (SFT /
preference / ranking tables), `run` (the one call the CLI and the KFP component make). The
public names are re-exported here, so `from seren.serengpt.labeling import X` keeps working.
"""

from seren.serengpt.labeling.merge import LABEL_COLUMNS, PRECEDENCE, build_labels, label_metrics
from seren.serengpt.labeling.run import run_labeling
from seren.serengpt.labeling.sources import (
    INSIDE_CONFIDENCE,
    KEY,
    NEGATIVE_CONFIDENCE,
    POSITIVE_CONFIDENCE,
    behaviour_labels,
    dataset_labels,
    survey_labels,
)
from seren.serengpt.labeling.teacher import (
    TEACHER_CONFIDENCE,
    TEACHER_INSTRUCTION,
    TEACHER_PROBE,
    parse_teacher,
    teacher_labels,
    teacher_prompt,
)
from seren.serengpt.labeling.training import (
    EVAL_COLUMNS,
    PREF_COLUMNS,
    SFT_COLUMNS,
    TABLES,
    TrainingData,
    build_training_data,
    render_prompts,
)

__all__ = [
    "EVAL_COLUMNS",
    "INSIDE_CONFIDENCE",
    "KEY",
    "LABEL_COLUMNS",
    "NEGATIVE_CONFIDENCE",
    "POSITIVE_CONFIDENCE",
    "PRECEDENCE",
    "PREF_COLUMNS",
    "SFT_COLUMNS",
    "TABLES",
    "TEACHER_CONFIDENCE",
    "TEACHER_INSTRUCTION",
    "TEACHER_PROBE",
    "TrainingData",
    "behaviour_labels",
    "build_labels",
    "build_training_data",
    "dataset_labels",
    "label_metrics",
    "parse_teacher",
    "render_prompts",
    "run_labeling",
    "survey_labels",
    "teacher_labels",
    "teacher_prompt",
]
