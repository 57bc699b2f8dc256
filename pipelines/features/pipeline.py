"""seren-features: turn a data source into a served Feast online store.

ingest + validate -> write offline sources -> feast apply -> materialize. The dataset artifact
is the pipeline's first output (every later pipeline starts from it); the second is the Feast
data dir whose online store now holds the batch views.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Metrics

from components.features.component import feast_apply, materialize, write_offline_sources
from components.ingest.component import ingest

# Local runs (`seren pipeline run features --local`, the demo): the generator's default size.
DEFAULT_PARAMS: dict = {"source": "synthetic", "n_users": 500, "n_items": 800, "seed": 0}


class Outputs(NamedTuple):
    dataset: Dataset
    materialized: Metrics
    feature_store: str


@dsl.pipeline(
    name="seren-features",
    description="Ingest and validate a dataset (synthetic, MovieLens or CSV), write Feast offline sources, apply the feature repo, materialize the online store.",
)
def pipeline(
    source: str = "synthetic",
    path: str = "",
    items_path: str = "",
    mapping: dict = {},  # noqa: B006 - KFP needs a literal default; kfp.local rejects None for dicts
    items_mapping: dict = {},  # noqa: B006
    event_default: str = "rating",
    n_users: int = 500,
    n_items: int = 800,
    seed: int = 0,
    feast_target: str = "",
    feast_data_dir: str = "",
) -> Outputs:
    """source: synthetic | movielens (path: folder) | csv (path, items_path, mapping = {canonical: column}).
    feast_target "" = $SEREN_FEAST_TARGET or local; feast_data_dir "" = $SEREN_HOME/features (on
    Kubeflow, storage that every step mounts)."""
    data = ingest(
        source=source,
        path=path,
        items_path=items_path,
        mapping=mapping,
        items_mapping=items_mapping,
        event_default=event_default,
        n_users=n_users,
        n_items=n_items,
        seed=seed,
    ).set_display_name("ingest + validate")
    offline = write_offline_sources(dataset=data.outputs["dataset"], data_dir=feast_data_dir).set_display_name(
        "write offline sources"
    )
    applied = feast_apply(data_dir=offline.outputs["Output"], target=feast_target).set_display_name("feast apply")
    loaded = materialize(data_dir=applied.outputs["Output"], target=feast_target).set_display_name("materialize")
    for task in (data, offline, applied, loaded):
        task.set_caching_options(False)  # reads mutable files / writes external Feast state
    return Outputs(
        dataset=data.outputs["dataset"], materialized=loaded.outputs["metrics"], feature_store=loaded.outputs["Output"]
    )
