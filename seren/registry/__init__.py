"""Versioned model store (local directory or gs://) and promotion through environments.

    from seren.registry import Registry, promote, rollback
    reg = Registry()                      # <SEREN_HOME>/registry, $SEREN_REGISTRY, or the environments file
    man = reg.register("serengpt", model_dir=..., onnx=..., validation=..., evaluation=...)
    promote("serengpt", man["version"], "dev")

Environments (dev -> staging -> prod) are configured in seren/registry/environments.yaml
(or $SEREN_ENVIRONMENTS); see seren.registry.config.
"""

from seren.registry.config import Environment, EnvironmentsConfig, load_environments, registry_uri
from seren.registry.promotion import DeploymentError, PromotionRefused, deploy, promote, rollback
from seren.registry.registry import DEFAULT_MODEL, Registry, evaluation_metrics, open_registry
from seren.registry.store import ConflictError, IntegrityError, Pointer

__all__ = [
    "DEFAULT_MODEL",
    "ConflictError",
    "DeploymentError",
    "Environment",
    "EnvironmentsConfig",
    "IntegrityError",
    "Pointer",
    "PromotionRefused",
    "Registry",
    "deploy",
    "evaluation_metrics",
    "load_environments",
    "open_registry",
    "promote",
    "registry_uri",
    "rollback",
]
