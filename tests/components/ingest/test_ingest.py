"""ingest: unit tests via python_func with real artifacts, and a kfp.local run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl

from components.ingest.component import ingest
from seren.data import load_dataset
from seren.errors import ConfigError, DataError


def test_ingest_synthetic_unit(artifact) -> None:
    ds_art, metrics = artifact(dsl.Dataset, "dataset"), artifact(dsl.Metrics, "metrics")
    ingest.python_func(dataset=ds_art, metrics=metrics, source="synthetic", n_users=20, n_items=60, seed=3)
    ds = load_dataset(ds_art.path)  # validates the canonical schema again
    assert ds.interactions["user_id"].nunique() == metrics.metadata["n_users"] == 20
    assert len(ds.items) == metrics.metadata["items_rows"] == 60
    assert metrics.metadata["interactions_rows"] == len(ds.interactions) > 0
    assert metrics.metadata["labels_rows"] == len(ds.labels) > 0


def test_ingest_csv_with_mapping_unit(artifact, tmp_path: Path) -> None:
    inter = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "customer": ["u1", "u1", "u2"],
            "sku": ["a", "b", "a"],
            "stars": [5, 3, 4],
            "when": ["2024-01-01T10:00:00Z", "2024-01-02T10:00:00Z", "2024-01-03T10:00:00Z"],
        }
    ).to_csv(inter, index=False)
    items = tmp_path / "items.csv"
    pd.DataFrame({"sku": ["a", "b"], "name": ["Alpha", "Beta"], "category": ["Top/A", "Top/B"]}).to_csv(
        items, index=False
    )
    ds_art, metrics = artifact(dsl.Dataset, "dataset"), artifact(dsl.Metrics, "metrics")
    ingest.python_func(
        dataset=ds_art,
        metrics=metrics,
        source="csv",
        path=str(inter),
        items_path=str(items),
        mapping={"user_id": "customer", "item_id": "sku", "rating": "stars", "timestamp": "when"},
        items_mapping={"item_id": "sku", "title": "name"},
    )
    ds = load_dataset(ds_art.path)
    assert sorted(ds.interactions["user_id"].unique()) == ["u1", "u2"]
    assert ds.items.set_index("item_id").loc["b", "title"] == "Beta"
    assert metrics.metadata["interactions_rows"] == 3 and metrics.metadata["items_rows"] == 2
    # the CLI reads the same source through the same dispatch (seren.data.ingest.load_source)
    from seren.cli import main

    out = tmp_path / "cli_ds"
    maps = ["interactions.user_id=customer", "item_id=sku", "rating=stars", "timestamp=when", "items.title=name"]
    main(["data", "import-csv", "--interactions", str(inter), "--items", str(items), "--out", str(out)]
         + [a for m in maps for a in ("--map", m)])  # fmt: skip
    cli = load_dataset(out)
    pd.testing.assert_frame_equal(cli.interactions, ds.interactions)
    pd.testing.assert_frame_equal(cli.items, ds.items)
    assert cli.meta["mapping"] == ds.meta["mapping"] and cli.meta["interactions"] == str(inter.resolve())


def test_ingest_bad_input_unit(artifact, tmp_path: Path) -> None:
    ds_art, metrics = artifact(dsl.Dataset, "dataset"), artifact(dsl.Metrics, "metrics")
    with pytest.raises(ConfigError, match="unknown ingest source 'parquet'"):
        ingest.python_func(dataset=ds_art, metrics=metrics, source="parquet")
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,rating,timestamp\nu1,a,great,2024-01-01\n")
    with pytest.raises(DataError, match="rating"):
        ingest.python_func(dataset=ds_art, metrics=metrics, source="csv", path=str(bad))
    assert not Path(ds_art.path).exists(), "a failed ingest must not leave a partial dataset"


def test_ingest_local(kfp_local, local_outputs) -> None:
    out = local_outputs(ingest(source="synthetic", n_users=12, n_items=40, seed=1))
    ds = load_dataset(out["dataset"].path)
    assert ds.interactions["user_id"].nunique() == 12
    assert out["metrics"].metadata["items_rows"] == 40
    assert Path(out["dataset"].path).is_relative_to(kfp_local)
