"""Golden compile tests in KFP's style: every discovered pipeline compiles to its committed
pipelines/<name>/golden.yaml, key by key, after normalising sdkVersion, command, image and the
seren version; and the golden spec loads back with the kfp SDK.

After a deliberate DAG change: `seren pipeline compile NAME --golden` (or
`python -m pipelines --update-golden NAME`), then review the diff of golden.yaml.
"""

from __future__ import annotations

import pytest
from google.protobuf import json_format
from kfp import components
from kfp.pipeline_spec import pipeline_spec_pb2

import pipelines as P
from pipelines import framework


@pytest.mark.parametrize("name", P.list_pipelines())
def test_compiles_to_golden(name: str) -> None:
    diffs = P.check_golden(name)
    hint = f"\nIf the change is deliberate: seren pipeline compile {name} --golden"
    assert diffs == [], "\n".join(diffs[:30]) + hint


@pytest.mark.parametrize("name", P.list_pipelines())
def test_golden_loads_back_with_the_sdk(name: str) -> None:
    path = framework.golden_path(name)
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `seren pipeline compile {name} --golden`")
    comp = components.load_component_from_file(str(path))
    assert comp.name == P.kfp_name(name)
    spec = json_format.ParseDict(framework.load_spec(path)[0], pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == P.kfp_name(name) and spec.root.dag.tasks
