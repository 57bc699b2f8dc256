"""Serving fixtures: the tiny model exported once, one model repository, one real tritonserver.

Everything is session-scoped and lives under the session's tmp dir (not the per-test
SEREN_HOME), so the server started for the first test serves them all.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2 as mc

HERE = Path(__file__).resolve().parent

# Texts that stress the prompt path: stripping, unicode, braces, newlines, a literal special token.
PROFILES = [
    "Reads science fiction; listens to jazz.",
    "  Hikes on weekends, collects vinyl\nand cooks Thai food.  ",
    "Top categories: Books/Poetry, Music/Jazz — café reviews {braces} ✨",
    "Top interests: Books 70%, Music 30% (entropy 0.88 bits; explores 5% outside).\n"
    "Engaged subcategories: Books/Sci-Fi 9, Music/Jazz 2; 8% of positives opened a new one.",
]
ITEMS = [
    "A cookbook of coastal soups",
    "Guide to birds of the Atlantic coast\nCategory: Books/Nature\nPrice: 12.50",
    "Literal <|im_end|> inside an item text",
    "x" * 200 + "\nCategory: Music/Jazz",  # with PROFILES[3]: the relation line (seren.llm.relation)
]


@pytest.fixture(scope="session")
def serving_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving")


@pytest.fixture(scope="session")
def tiny_scorer(tiny_model_dir: Path):
    from seren.llm.scorer import SerenScorer

    return SerenScorer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def scorer_onnx(tiny_model_dir: Path, serving_dir: Path) -> Path:
    from serving.export import export_onnx

    return export_onnx(tiny_model_dir, serving_dir / "scorer.onnx")


def _constant_model(repo: Path, name: str, input_dims: int, width: int) -> None:
    """A test-only python model with the ensemble's tensor names but other shapes."""
    from serving.model_repository import write_config

    cfg = mc.ModelConfig(name=name, backend="python", max_batch_size=8)
    for inp in ("PROFILE_TEXT", "ITEM_TEXT"):
        cfg.input.add(name=inp, data_type=mc.TYPE_STRING, dims=[input_dims])
    cfg.output.add(name="SCORE", data_type=mc.TYPE_FP32, dims=[width])
    cfg.instance_group.add(kind=mc.ModelInstanceGroup.KIND_CPU, count=1)
    cfg.parameters["width"].string_value = str(width)
    (repo / name / "1").mkdir(parents=True)
    shutil.copy2(HERE / "models" / "constant_model.py", repo / name / "1" / "model.py")
    write_config(cfg, repo / name)


@pytest.fixture(scope="session")
def model_repo(scorer_onnx: Path, tiny_model_dir: Path, serving_dir: Path) -> Path:
    from serving.model_repository import build_model_repository

    repo = build_model_repository(scorer_onnx, tiny_model_dir, serving_dir / "repo", target="local", version=1)
    _constant_model(repo, "wide_output", input_dims=1, width=2)  # response shape mismatch
    _constant_model(repo, "pair_input", input_dims=2, width=1)  # request shape mismatch
    return repo


@pytest.fixture(scope="session")
def triton(model_repo: Path, serving_dir: Path) -> Iterator:
    """The real tritonserver from .venv-triton, serengpt loaded, on free loopback ports."""
    from serving.triton import TritonServer

    server = TritonServer(
        model_repo,
        log_file=serving_dir / "tritonserver.log",
        backend_dir=serving_dir / "backends",
        models=["serengpt", "wide_output", "pair_input"],
    )
    with server:
        yield server
