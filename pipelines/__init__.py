"""seren's KFP pipelines and the framework that compiles, runs and submits them.

Each pipeline is a folder `pipelines/<name>/` with `pipeline.py` defining `pipeline` (a
`@dsl.pipeline` named "seren-<name>", underscores written as hyphens since KFP names allow only
[a-z0-9-]) and `DEFAULT_PARAMS` (the arguments of a local run), and the committed golden spec
`golden.yaml`. Adding a folder is all it takes for `seren pipeline list`,
`compile --all`, the golden tests, local runs, submission and schedules to pick it up.
"""

from pipelines.framework import (
    PipelineInfo,
    check_golden,
    compile,
    compile_all,
    git_sha,
    kfp_name,
    list_pipelines,
    load,
    normalise_spec,
    parse_every,
    parse_params,
    pipeline_version,
    run_local,
    schedule,
    spec_diff,
    submit,
    update_golden,
)

__all__ = [
    "PipelineInfo",
    "check_golden",
    "compile",
    "compile_all",
    "git_sha",
    "kfp_name",
    "list_pipelines",
    "load",
    "normalise_spec",
    "parse_every",
    "parse_params",
    "pipeline_version",
    "run_local",
    "schedule",
    "spec_diff",
    "submit",
    "update_golden",
]
