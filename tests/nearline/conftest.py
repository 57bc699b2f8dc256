"""Nearline fixtures, built once per session: the tiny SerenGPT served by the real tritonserver
(.venv-triton), and exploration outputs for the synthetic `small_dataset` in the published layout
the nearline job reads. Those outputs are NOT an exploration run's: interest clusters from TF-IDF
item vectors (not MiniLM embeddings), a pair table filled by the co-occurrence baseline (not the
novelty LLM; same columns), and a sequence recommender trained for 3 epochs (see
`build_exploration`). `fake_kfp` is the Kubeflow API stand-in of tests/pipelines (loaded from
there, so there is one fake)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def build_exploration(dataset_dir: Path, out: Path, work: Path) -> Path:
    """Real exploration outputs, small and fast, published like the exploration pipeline does.

    Two stand-ins keep this to seconds (the nearline job only consumes these artifacts; the
    exploration tests cover how they are made): TF-IDF item vectors instead of MiniLM embeddings,
    and the pair table filled by the co-occurrence baseline instead of the novelty LLM (same
    columns, so `PairLookup` reads it as it reads the LLM's)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    from seren.data import load_dataset
    from seren.exploration.clusters import build_clusters, item_texts
    from seren.exploration.pair_table import TABLE_FILE, baseline_pair_table
    from seren.exploration.seqrec import train_seqrec
    from seren.exploration.transitions import build_transitions
    from seren.exploration.workflow import publish_outputs
    from seren.io import write_parquet

    ds = load_dataset(dataset_dir)
    vec = TfidfVectorizer().fit_transform(item_texts(ds.items)).toarray().astype(np.float32)
    cl = build_clusters(ds.items, n_top=3, n_sub=2, seed=0, embeddings=vec)
    cl.save(work / "clusters")
    tr = build_transitions(ds.interactions, cl.item_to_cluster, cl.descriptions, min_count=1, test_frac=0.2)
    table = baseline_pair_table(tr, cl.ids, 2)
    write_parquet(work / "table" / TABLE_FILE, table)
    train_seqrec(ds, work / "seqrec", epochs=3, dim=32, n_blocks=1, seed=0, progress=False)
    return publish_outputs(
        out,
        clusters_dir=work / "clusters",
        table_dir=work / "table",
        dataset_dir=dataset_dir,
        seqrec_dir=work / "seqrec",
    )


@pytest.fixture(scope="session")
def exploration_dir(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nearline_exploration")
    return build_exploration(small_dataset, root / "published", root / "work")


@pytest.fixture(scope="session")
def model_repo(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from serving.export import export_onnx
    from serving.model_repository import build_model_repository

    root = tmp_path_factory.mktemp("nearline_serving")
    onnx = export_onnx(tiny_model_dir, root / "scorer.onnx")
    return build_model_repository(onnx, tiny_model_dir, root / "repo", target="local", version=1)


@pytest.fixture(scope="session")
def triton(model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The real tritonserver with the tiny SerenGPT ensemble loaded, on free loopback ports."""
    from serving.triton import TritonServer

    root = tmp_path_factory.mktemp("nearline_triton")
    with TritonServer(
        model_repo,
        log_file=root / "tritonserver.log",
        backend_dir=root / "backends",
        models=["serengpt", "serengpt_packed"],
    ) as srv:
        yield srv


@pytest.fixture(scope="session")
def few_users(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four users of the small dataset (the exploration outputs were built on all of it)."""
    from seren.data import load_dataset, save_dataset

    ds = load_dataset(small_dataset)
    keep = sorted(ds.interactions["user_id"].unique())[:4]
    ds.interactions = ds.interactions[ds.interactions["user_id"].isin(keep)].reset_index(drop=True)
    if ds.users is not None:
        ds.users = ds.users[ds.users["user_id"].isin(keep)].reset_index(drop=True)
    if ds.labels is not None:
        ds.labels = ds.labels[ds.labels["user_id"].isin(keep)].reset_index(drop=True)
    out = tmp_path_factory.mktemp("few_users") / "data"
    save_dataset(ds, out)
    return out


_REGISTRY_CONFTEST = Path(__file__).resolve().parent.parent / "registry" / "conftest.py"
_rspec = importlib.util.spec_from_file_location("_seren_gcs_emulator_for_nearline", _REGISTRY_CONFTEST)
_registry = sys.modules.setdefault(_rspec.name, importlib.util.module_from_spec(_rspec))
_rspec.loader.exec_module(_registry)
gcs_emulator = _registry.gcs_emulator  # gcp-storage-emulator on loopback (module scope)
gs_uri = _registry.gs_uri

_FEATURES_CONFTEST = Path(__file__).resolve().parent.parent / "features" / "conftest.py"
_fspec = importlib.util.spec_from_file_location("_seren_redis_for_nearline", _FEATURES_CONFTEST)
_features = sys.modules.setdefault(_fspec.name, importlib.util.module_from_spec(_fspec))
_fspec.loader.exec_module(_features)
RedisServer = _features.RedisServer  # a real redis-server on a free loopback port
