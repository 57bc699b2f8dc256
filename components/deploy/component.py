"""Deploy: promote a registered version into an environment (dev in the training pipeline).

Same path as `seren promote`: checks, Triton model repository version, load + smoke test through
the environment's Triton URL, or a temporary local tritonserver when none is configured (see
seren/registry/environments.yaml, `verify`). A champion/challenger refusal is an outcome
(deployed = "false"), not a failed run.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Metrics, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def deploy_model(
    version: int,
    deployment: Output[Artifact],
    metrics: Output[Metrics],
    env: str = "dev",
    registry: str = "",
    model_name: str = "serengpt",
    environments: str = "",
) -> NamedTuple("Outputs", [("deployed", str)]):
    """deployment: the audit record + deployment details (JSON)."""
    from collections import namedtuple

    from seren.registry.steps import deploy_metrics, deploy_step

    res = deploy_step(version, deployment.path, env, registry, model_name, environments)
    for key, value in deploy_metrics(res).items():
        metrics.log_metric(key, value)
    return namedtuple("Outputs", ["deployed"])("true" if res["deployed"] else "false")
