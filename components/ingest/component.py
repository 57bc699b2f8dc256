"""Ingest: any supported source -> a validated canonical dataset directory (+ row counts).

The dataset artifact is the contract every later stage reads (`seren.data.load_dataset`). The source
dispatch is `seren.data.ingest.load_source`, the one the `seren data` import commands call too.
"""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def ingest(
    dataset: Output[Dataset],
    metrics: Output[Metrics],
    source: str = "synthetic",
    path: str = "",
    items_path: str = "",
    mapping: dict = {},  # noqa: B006 - KFP needs a literal default; kfp.local rejects None for dicts
    items_mapping: dict = {},  # noqa: B006
    event_default: str = "rating",
    n_users: int = 500,
    n_items: int = 800,
    seed: int = 0,
):
    """source: synthetic (n_users, n_items, seed) | movielens (path: dir with ratings.csv, movies.csv) |
    csv (path: interactions file, items_path: item catalogue or "" to derive one from the ids; csv,
    tsv or parquet; mapping/items_mapping: {canonical column: source column}) | dataset (path: a canonical
    dataset directory, e.g. from `seren data generate`)."""
    from seren.data import save_dataset
    from seren.data.ingest import load_source

    synthetic = {"n_users": n_users, "n_items": n_items, "seed": seed}
    ds = load_source(
        source,
        path,
        items_path=items_path,
        mapping=mapping,
        items_mapping=items_mapping,
        event_default=event_default,
        synthetic=synthetic,
    )
    save_dataset(ds, dataset.path)
    tables = {"interactions": ds.interactions, "items": ds.items, "users": ds.users, "labels": ds.labels}
    for table, df in tables.items():
        metrics.log_metric(f"{table}_rows", 0 if df is None else len(df))
    metrics.log_metric("n_users", int(ds.interactions["user_id"].nunique()))
