"""Discover, compile, golden-check, run locally, submit and schedule seren's pipelines.

This is the only place that talks to KFP's compiler, `kfp.local` and `kfp.Client`, so every
pipeline gets the same versioning (package version + git short SHA in the spec file name and
description), the same local-run layout under `seren_home()/pipeline_runs/`, and the same one-line
errors for bad parameters or an unreachable cluster.

Split by concern: `discover` (folders, conventions, versioning), `compiler` (IR YAML),
`golden` (normalise, diff, rewrite the committed specs), `params` (argument names and types),
`local` (kfp.local runs), `remote` (Kubeflow submit and schedule). The public names are
re-exported here, so `from pipelines.framework import X` keeps working.
"""

from pipelines.framework.compiler import compile, compile_all, load_spec
from pipelines.framework.discover import (
    PIPELINES_DIR,
    PipelineInfo,
    git_sha,
    kfp_name,
    list_pipelines,
    load,
    pipeline_version,
    spec_filename,
)
from pipelines.framework.golden import (
    GOLDEN_NAME,
    VERSION_PLACEHOLDER,
    VERSION_RE,
    check_golden,
    golden_path,
    normalise_spec,
    spec_diff,
    update_golden,
)
from pipelines.framework.local import EventCallback, run_local
from pipelines.framework.params import coerce_params, parse_params
from pipelines.framework.remote import check_token_transport, parse_every, schedule, submit

__all__ = [
    "GOLDEN_NAME",
    "PIPELINES_DIR",
    "VERSION_PLACEHOLDER",
    "VERSION_RE",
    "EventCallback",
    "PipelineInfo",
    "check_golden",
    "check_token_transport",
    "coerce_params",
    "compile",
    "compile_all",
    "git_sha",
    "golden_path",
    "kfp_name",
    "list_pipelines",
    "load",
    "load_spec",
    "normalise_spec",
    "parse_every",
    "parse_params",
    "pipeline_version",
    "run_local",
    "schedule",
    "spec_diff",
    "spec_filename",
    "submit",
    "update_golden",
]
