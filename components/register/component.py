"""Register: the merged model, its ONNX export, the validation and evaluation reports -> a new
immutable registry version (local dir or gs://), with a generated model card."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    onnx: Input[Model],
    validation: Input[Artifact],
    evaluation: Input[Artifact],
    evaluation_report: Input[Markdown],
    registered: Output[Artifact],
    judgments: Input[Dataset] = None,
    registry: str = "",
    model_name: str = "serengpt",
    environments: str = "",
) -> NamedTuple("Outputs", [("version", int), ("registry", str)]):
    """registry: directory or gs://bucket/prefix ("" = $SEREN_REGISTRY / the environments file's).
    judgments: validate's judgments, stored in the version as monitoring's reference for it."""
    from collections import namedtuple

    from seren.registry.steps import register_step

    meta = {"model_uri": model.uri, "onnx_uri": onnx.uri, **{f"model.{k}": v for k, v in model.metadata.items()}}
    man = register_step(
        model.path,
        onnx.path,
        validation.path,
        evaluation.path,
        evaluation_report.path,
        registered.path,
        registry,
        model_name,
        environments,
        meta,
        reference_judgments=judgments.path if judgments is not None else None,
    )
    registered.metadata.update({"model": model_name, "version": man["version"], "registry": man["registry"]})
    return namedtuple("Outputs", ["version", "registry"])(man["version"], man["registry"])
