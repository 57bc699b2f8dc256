"""Feast stages of the features pipeline: offline sources -> apply -> materialize.

Each step passes the resolved Feast data dir on as its string output, which both orders the
steps and tells the next one where the repo state lives. Feast state is external to the
artifacts, so these tasks are never cached (the pipeline turns caching off for them).
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def write_offline_sources(dataset: Input[Dataset], metrics: Output[Metrics], data_dir: str = "") -> str:
    """Write the batch views' offline parquet tables from the dataset; data_dir "" = $SEREN_HOME/features."""
    from pathlib import Path

    import pyarrow.parquet as pq

    from feature_repo.store import default_data_dir, write_offline
    from seren.data import load_dataset

    out = Path(data_dir or default_data_dir()).resolve()
    for view, table in write_offline(load_dataset(dataset.path), out).items():
        metrics.log_metric(f"{view}_rows", pq.ParquetFile(table).metadata.num_rows)
    return str(out)


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def feast_apply(data_dir: str, metrics: Output[Metrics], target: str = "") -> str:
    """Register entities, sources and views; target "" = $SEREN_FEAST_TARGET or local."""
    from pathlib import Path

    from feature_repo.store import apply, get_store

    objects = apply(get_store(target or None, Path(data_dir)))
    for kind in ("entity", "feature_view", "push_source"):
        metrics.log_metric(f"{kind}_count", sum(o.startswith(f"{kind}:") for o in objects))
    return data_dir


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def materialize(data_dir: str, metrics: Output[Metrics], target: str = "") -> str:
    """Load the latest offline row per entity into the online store; metrics = entities per view."""
    from pathlib import Path

    from feature_repo.store import get_store
    from feature_repo.store import materialize as materialize_views

    for view, rows in materialize_views(get_store(target or None, Path(data_dir))).items():
        metrics.log_metric(f"{view}_rows", rows)
    return data_dir
