"""Shared fixtures. Servers (Redis, Triton, GCS emulator) are started by the fixtures of the
tests that need them, on free loopback ports, and torn down."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
MOVIELENS_SMALL = SHARED_DATA / "ml-latest-small"


def pytest_configure(config: pytest.Config) -> None:
    # kfp.local warns that our base image is not "python:*" and that task settings have no local effect,
    # and kfp.Client that the fake API server is not a real Kubeflow: all harmless here.
    for line in (
        "ignore:You may be attemping to run a task:RuntimeWarning",
        "ignore:Task '.*'. settings .* have no effect:UserWarning",
        "ignore:This client only works with Kubeflow Pipeline:FutureWarning",
    ):
        config.addinivalue_line("filterwarnings", line)


def _load_fake_kfp():  # noqa: ANN202 - a module
    """The Kubeflow API stand-in lives with the pipeline tests; other areas (monitoring, nearline) use the
    same one through the `fake_kfp` fixture below."""
    spec = importlib.util.spec_from_file_location("_seren_fake_kfp", REPO / "tests" / "pipelines" / "conftest.py")
    mod = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(mod)
    return mod


fake_kfp = _load_fake_kfp().fake_kfp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def _session_model_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Session fixtures (tiny_model_dir, ...) run before the per-test env below: give them the cache too."""
    os.environ["SEREN_MODEL_CACHE"] = str(_model_cache(tmp_path_factory))


@pytest.fixture(autouse=True)
def _seren_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own SEREN_HOME; the imported base model cache is shared (slow to build)."""
    monkeypatch.setenv("SEREN_HOME", str(tmp_path_factory.mktemp("seren_home")))
    monkeypatch.setenv("SEREN_MODEL_CACHE", str(_model_cache(tmp_path_factory)))


_CACHE: Path | None = None


def _model_cache(factory: pytest.TempPathFactory) -> Path:
    global _CACHE
    if _CACHE is None:
        _CACHE = Path(os.environ.get("SEREN_TEST_MODEL_CACHE", factory.getbasetemp() / "model_cache"))
        _CACHE.mkdir(parents=True, exist_ok=True)
    return _CACHE


@pytest.fixture(scope="session")
def movielens_small() -> Path:
    if not (MOVIELENS_SMALL / "ratings.csv").exists():
        pytest.skip(f"MovieLens ml-latest-small not found at {MOVIELENS_SMALL} (shared data absent)")
    return MOVIELENS_SMALL


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded synthetic dataset directory (canonical parquet tables)."""
    from seren.data import save_dataset
    from seren.data.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("data") / "synthetic"
    save_dataset(generate(SyntheticConfig(n_users=80, n_items=160, seed=7)), out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random LlamaConfig model with the SmolLM2 tokenizer (fast tests)."""
    from seren.llm.base import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny", seed=0)


@pytest.fixture
def kfp_local(tmp_path: Path):
    """kfp.local in this interpreter (no Docker here): SubprocessRunner(use_venv=False)."""
    from kfp import local

    root = tmp_path / "pipeline_root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root
