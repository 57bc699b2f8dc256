"""The packed multi-candidate graph: exported, run by ONNX Runtime and served by real Triton,
equal to per-pair scoring; candidates isolated; bad input is a one-line error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seren.errors import DataError
from seren.llm.packed import join_packs, split_row, to_arrays
from serving.export import PACKED_DYNAMIC_AXES, check_dynamic_axes, packed_sibling
from serving.model_repository import PACKED_ENSEMBLE, PACKED_SCORER, PACKER, read_config
from serving.triton_models.packed_scorer.model import OnnxPackedScorer

from .conftest import ITEMS, PROFILES


@pytest.fixture(scope="session")
def packed_onnx(scorer_onnx: Path) -> Path:
    path = packed_sibling(scorer_onnx)
    assert path is not None, "export_onnx writes packed.onnx beside the per-pair graph"
    return path


def test_packed_graph_axes_and_ort_parity(packed_onnx: Path, tiny_scorer) -> None:
    shapes = check_dynamic_axes(packed_onnx, PACKED_DYNAMIC_AXES)
    assert shapes["answer_index"] == ["batch", "candidates"] and shapes["score"] == ["batch", "candidates"]
    # Two users in one batch; the second user's candidates split into two packs joined in one row.
    profiles = [PROFILES[0]] * 2 + [PROFILES[3]] * 4
    items = ITEMS[:2] + ITEMS
    packs = tiny_scorer.pack(profiles, items)
    second = [p for p in tiny_scorer.pack(profiles, items, max_len=len(packs[1].input_ids) - 1) if 2 in p.candidates]
    rows = [packs[0], join_packs(tiny_scorer.pack(profiles, items, max_len=len(packs[1].input_ids) - 1)[1:])]
    assert len(second) == 1 and rows[1].segment_ids.count(-2) > 0, "the second row must hold two packs"
    pad = int(tiny_scorer.tokenizer.pad_token_id)
    got = OnnxPackedScorer(packed_onnx)(*to_arrays(rows, pad, 8, 4))
    assert got.shape[0] == 2 and got.shape[1] % 4 == 0
    ref = tiny_scorer.score(profiles, items, mode="pair")
    flat = np.concatenate([got[0, :2], got[1, :4]])
    order = np.concatenate([rows[0].candidates, rows[1].candidates])
    np.testing.assert_allclose(flat, ref[order], atol=1e-5)
    # split_row recovers the packs of a joined row (what the python scorer on Triton does).
    ids, seg, ans = to_arrays([rows[1]], pad, 8, 4)
    assert [len(p.candidates) for p in split_row(ids[0], seg[0], ans[0])] == [len(x.candidates) for x in second] + [
        4 - len(second[0].candidates)
    ]


def test_repository_has_the_packed_ensemble(model_repo: Path) -> None:
    ens = read_config(model_repo / PACKED_ENSEMBLE)
    assert [s.model_name for s in ens.ensemble_scheduling.step] == [PACKER, PACKED_SCORER]
    assert {i.name: list(i.dims) for i in ens.input} == {"PROFILE_TEXT": [1], "ITEM_TEXT": [-1]}
    scorer = read_config(model_repo / PACKED_SCORER)
    assert all(i.allow_ragged_batch for i in scorer.input) and scorer.HasField("dynamic_batching")
    assert read_config(model_repo / PACKER).parameters["max_len"].string_value == "2048"
    for f in ("model.py", "encoder.py", "packed.py", "tokenizer.json", "prompt.json", "relation.py"):
        assert (model_repo / PACKER / "1" / f).is_file(), f


@pytest.mark.integration
def test_triton_packed_equals_per_pair_and_isolates(triton, tiny_scorer) -> None:
    from serving.packed_client import PackedClient

    triton.load(PACKED_ENSEMBLE)
    ref = tiny_scorer.score(PROFILES, ITEMS, mode="pair")
    with PackedClient(triton.http_url) as c:
        got = c.score(PROFILES, ITEMS)  # four users, one candidate each
        items = ITEMS + ["A second cookbook", "Jazz live in Paris"]
        one = c.score_users([(PROFILES[3], items)])[0]
        changed = c.score_users([(PROFILES[3], items[:4] + ["Garden tools and seeds, a long catalogue", items[5]])])[0]
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(one, tiny_scorer.score(PROFILES[3], items, mode="pair"), atol=1e-5)
    np.testing.assert_allclose(changed[[0, 1, 2, 3, 5]], one[[0, 1, 2, 3, 5]], atol=1e-6)
    assert abs(float(changed[4]) - float(one[4])) > 1e-4
    # A few users per request, different candidate counts (padded with empty slots).
    with PackedClient(triton.http_url, users_per_request=3) as c:
        many = c.score_users([(PROFILES[0], ITEMS[:1]), (PROFILES[1], ITEMS), (PROFILES[2], ITEMS[:2])])
    assert [len(m) for m in many] == [1, 4, 2]
    np.testing.assert_allclose(many[1], tiny_scorer.score(PROFILES[1], ITEMS, mode="pair"), atol=1e-5)


@pytest.mark.integration
def test_triton_packed_bad_input_is_one_line(triton) -> None:
    from serving.packed_client import PackedClient

    triton.load(PACKED_ENSEMBLE)
    with PackedClient(triton.http_url, retries=0) as c:
        with pytest.raises(DataError, match="over the pack limit of 2048") as e:
            c.score_users([(PROFILES[0], ["word " * 2100, ITEMS[0]])])
        assert "\n" not in str(e.value) and str(e.value).count("Fix:") == 1
        with pytest.raises(DataError, match="empty candidate list"):
            c.score_users([(PROFILES[0], [])])
        assert c.score_users([(PROFILES[0], ITEMS[:1])])[0].shape == (1,)  # the server still serves


def test_packed_cpu_and_gpu_targets(scorer_onnx: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    from tritonclient.grpc import model_config_pb2 as mc

    from serving.model_repository import build_model_repository

    cpu = build_model_repository(scorer_onnx, tiny_model_dir, tmp_path / "cpu", target="cpu")
    sc = read_config(cpu / PACKED_SCORER)
    assert sc.platform == "onnxruntime_onnx" and not any(i.allow_ragged_batch for i in sc.input)
    pk = read_config(cpu / PACKER)  # fixed-shape backends: rounded shapes so users' rows can batch
    assert (pk.parameters["pad_to_multiple_of"].string_value, pk.parameters["slots_multiple_of"].string_value) == (
        "64",
        "8",
    )
    engine = tmp_path / "export" / "model.plan"
    engine.parent.mkdir()
    engine.write_bytes(b"per-pair stand-in")
    gpu = build_model_repository(scorer_onnx, tiny_model_dir, tmp_path / "gpu", target="gpu", engine_path=engine)
    assert not (gpu / PACKED_ENSEMBLE).exists()  # no packed engine: per-pair only, never a wrong engine
    engine.with_name("packed.plan").write_bytes(b"packed stand-in")
    gpu = build_model_repository(scorer_onnx, tiny_model_dir, tmp_path / "gpu", target="gpu", engine_path=engine)
    g = read_config(gpu / PACKED_SCORER)
    assert g.platform == "tensorrt_plan" and g.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert (gpu / PACKED_SCORER / "1" / "model.plan").read_bytes() == b"packed stand-in"


def test_validation_gates_the_packed_graph(tiny_model_dir: Path, scorer_onnx: Path, tmp_path: Path) -> None:
    import shutil

    import pandas as pd

    from seren.llm.base import make_tiny_model
    from serving.export import export_packed_onnx
    from serving.validate import validate

    df = pd.DataFrame(
        {
            "profile_text": [PROFILES[i % 3] for i in range(9)],
            "item_text": [f"{ITEMS[i % 4][:50]} #{i}" for i in range(9)],
        }
    )
    report = validate(tiny_model_dir, scorer_onnx, df, batch_size=4, latency_rows=2)
    gate = report["gates"]["onnx_packed_max_abs_diff"]
    assert gate["passed"] is True and gate["value"] <= 1e-4 and report["onnx_packed"]["packs"] == 3
    # A packed graph of other weights beside a faithful per-pair graph fails only its own gate.
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy2(scorer_onnx, bad / "model.onnx")
    export_packed_onnx(make_tiny_model(tmp_path / "other", seed=1), bad / "packed.onnx")
    report = validate(tiny_model_dir, bad / "model.onnx", df, batch_size=4, latency_rows=2)
    assert report["gates"]["onnx_max_abs_diff"]["passed"] is True
    assert report["gates"]["onnx_packed_max_abs_diff"]["passed"] is False and report["passed"] is False
