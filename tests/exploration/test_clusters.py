"""Interest clusters: granularity, unique descriptions, metrics, embedding cache, bad inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from seren.errors import DataError
from seren.exploration import clusters as C
from seren.exploration.clusters import Clusters, build_clusters, ctfidf_keywords

from .conftest import N_SUB, N_TOP


def _blob_items(n_per: int, centers: int, seed: int = 0, dim: int = 8) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    words = [
        "jazz",
        "poetry",
        "hiking",
        "sushi",
        "rockets",
        "chess",
        "yoga",
        "opera",
        "surf",
        "pottery",
        "drones",
        "tango",
    ]
    rows, x = [], []
    for c in range(centers):
        mu = rng.normal(size=dim) * 5
        for j in range(n_per):
            rows.append(
                {
                    "item_id": f"i{c}_{j}",
                    "title": f"{words[c % len(words)]} {j}",
                    "text": f"all about {words[c % len(words)]} and more",
                    "category": "A/B",
                }
            )
            x.append(mu + rng.normal(size=dim) * 0.1)
    return pd.DataFrame(rows), np.asarray(x, dtype=np.float32)


def test_small_dataset_clusters(small_clusters: Clusters, small_ds: Any) -> None:
    m = small_clusters.metrics
    assert m["n_clusters"] == N_TOP * N_SUB == len(small_clusters.clusters)
    assert m["description_unique_share"] == 1.0
    assert small_clusters.clusters["description"].is_unique
    assert int(small_clusters.clusters["size"].sum()) == len(small_ds.items)
    assert set(small_clusters.assignments["item_id"]) == set(small_ds.items["item_id"])
    assert -1.0 <= m["silhouette_leaf"] <= 1.0 and m["silhouette_leaf"] > 0.05  # text clusters are real structure
    assert small_clusters.centroids.shape == (m["n_clusters"], 384)
    # every leaf belongs to its top cluster
    assert all(
        cid.startswith(top)
        for cid, top in zip(small_clusters.clusters["cluster_id"], small_clusters.clusters["top_id"], strict=True)
    )


def test_granularity_is_a_parameter_and_small_tops_fall_back() -> None:
    items, x = _blob_items(n_per=6, centers=6)
    fine = build_clusters(items, n_top=3, n_sub=2, embeddings=x)
    coarse = build_clusters(items, n_top=2, n_sub=1, embeddings=x)
    assert fine.metrics["n_clusters"] == 6 and coarse.metrics["n_clusters"] == 2
    # a top cluster with fewer items than n_sub is split into as many clusters as it has items
    items2, x2 = _blob_items(n_per=1, centers=2, seed=1)
    big, xb = _blob_items(n_per=10, centers=1, seed=2)
    items3 = pd.concat([items2, big.assign(item_id=lambda d: "b" + d["item_id"])], ignore_index=True)
    out = build_clusters(items3, n_top=3, n_sub=3, embeddings=np.vstack([x2, xb]))
    assert out.metrics["n_clusters_requested"] == 9 and out.metrics["n_clusters"] == 5  # 1 + 1 + 3
    assert out.clusters["description"].is_unique


def test_descriptions_are_unique_even_with_identical_texts() -> None:
    items, x = _blob_items(n_per=5, centers=4)
    items["text"] = "the very same words"  # c-TF-IDF cannot tell the clusters apart
    items["title"] = "same"
    out = build_clusters(items, n_top=4, n_sub=1, embeddings=x)
    descs = out.clusters["description"].tolist()
    assert len(set(descs)) == 4, descs
    assert C._unique_descriptions([["a", "b"], ["a", "b"], ["a", "b", "c"]], 2, ["x", "y", "z"]) == [
        "a, b",
        "a, b #2",
        "a, b, c",
    ]


def test_ctfidf_prefers_distinctive_words() -> None:
    kws = ctfidf_keywords(["jazz jazz saxophone music", "poetry verse music", "music music hiking trails"])
    assert kws[0][0] == "jazz" and kws[1][0] in ("poetry", "verse") and "music" not in kws[0][:1]


def test_fewer_items_than_clusters_is_a_clear_error() -> None:
    items, x = _blob_items(n_per=2, centers=2)
    with pytest.raises(DataError, match=r"4 items but 9 interest clusters requested.*Fix: lower n_top/n_sub"):
        build_clusters(items, n_top=3, n_sub=3, embeddings=x)
    with pytest.raises(DataError, match="2 embeddings for 4 items"):
        build_clusters(items, n_top=2, n_sub=1, embeddings=x[:2])


def test_llm_names_replace_keywords_but_stay_unique(
    small_ds: Any, item_embeddings: np.ndarray, tiny_model_dir: Path
) -> None:
    from seren.llm.backends import LocalBackend

    class ConstantNamer:  # an LLM that answers the same name for every cluster
        name = "constant"

        def complete(self, prompt: str, max_new_tokens: int = 64) -> str:
            return '"Cozy Evenings"\nmore text'

    out = build_clusters(small_ds.items, n_top=2, n_sub=2, embeddings=item_embeddings, backend=ConstantNamer())
    assert out.metrics["llm_named"] == 1 and "cozy evenings" in out.clusters["description"].tolist()
    assert out.clusters["description"].is_unique
    real = build_clusters(
        small_ds.items, n_top=2, n_sub=2, embeddings=item_embeddings, backend=LocalBackend(tiny_model_dir)
    )
    assert real.clusters["description"].is_unique and all(real.clusters["description"].str.len() > 0)


def test_embedding_cache_by_content_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["a jazz record", "a poetry book"]
    first = C.embed_texts(texts, cache_dir=tmp_path)
    assert first.shape == (2, 384) and np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert len(list(tmp_path.glob("*.npy"))) == 1

    def no_model(_: str) -> Any:
        raise AssertionError("the encoder must not be loaded on a cache hit")

    monkeypatch.setattr(C, "_load_encoder", no_model)
    assert np.array_equal(C.embed_texts(texts, cache_dir=tmp_path), first)
    with pytest.raises(AssertionError):  # changed content -> new key -> recompute
        C.embed_texts(texts + ["new"], cache_dir=tmp_path)


def test_save_load_roundtrip_and_bad_dir(small_clusters: Clusters, tmp_path: Path) -> None:
    small_clusters.save(tmp_path / "c")
    back = Clusters.load(tmp_path / "c")
    pd.testing.assert_frame_equal(
        back.clusters.drop(columns="keywords"), small_clusters.clusters.drop(columns="keywords")
    )
    assert back.item_to_cluster == small_clusters.item_to_cluster and back.metrics == small_clusters.metrics
    with pytest.raises(DataError, match="is not a clusters directory"):
        Clusters.load(tmp_path / "nope")
    assert C.assign_items(small_clusters, small_clusters.centroids) == small_clusters.ids
