"""Ingest: any supported source -> a validated canonical dataset directory (+ row counts).

The dataset artifact is the contract every later stage reads (`seren.data.load_dataset`).
"""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from components import SEREN_IMAGE

SOURCES = ("synthetic", "movielens", "csv")


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
    from seren.data import Dataset as Tables
    from seren.data import save_dataset
    from seren.errors import ConfigError

    if source == "synthetic":
        from seren.data.synthetic import SyntheticConfig, generate

        ds = generate(SyntheticConfig(n_users=n_users, n_items=n_items, seed=seed))
    elif source == "movielens":
        from seren.data.movielens import load_movielens

        ds = load_movielens(path)
    elif source == "dataset":  # a canonical dataset dir (`seren data generate/import-*`): re-validated as is
        from seren.data import load_dataset

        ds = load_dataset(path)
    elif source == "csv":
        from seren.data.adapters import items_from_interactions, load_interactions, load_items

        inter = load_interactions(path, mapping, event_default=event_default)
        items = load_items(items_path, items_mapping) if items_path else items_from_interactions(inter)
        ds = Tables(
            interactions=inter, items=items, meta={"source": "csv", "interactions": path, "items": items_path or None}
        )
    else:
        raise ConfigError(f"unknown ingest source {source!r}", "use source=synthetic, movielens, csv or dataset")
    save_dataset(ds.validate(), dataset.path)
    tables = {"interactions": ds.interactions, "items": ds.items, "users": ds.users, "labels": ds.labels}
    for table, df in tables.items():
        metrics.log_metric(f"{table}_rows", 0 if df is None else len(df))
    metrics.log_metric("n_users", int(ds.interactions["user_id"].nunique()))
