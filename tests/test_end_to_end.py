"""The whole path in one test, on the tiny model and the small synthetic dataset, through the same
library functions the pipeline components call (no kfp.local, to stay fast):

training (the serengpt_training stages' library calls) -> export + validate (validation judgments become monitoring's reference)
-> register -> promote to dev, whose environment is a live tritonserver -> exploration stages
(MiniLM clusters, novelty LLM fine-tuned on the tiny model, the LLM's pair table, sequence
recommender; published) -> pair table pushed to Feast -> nearline scoring on that Triton, pushing
to Feast's Redis target on a real redis-server -> `seren recommend` reading Redis -> drift of the
nearline judgments against the validation reference.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import secrets
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parent


def _conftest(area: str) -> Any:
    """A sibling area's conftest (conftests cannot be imported by name); one module per file."""
    spec = importlib.util.spec_from_file_location(f"_seren_e2e_{area}_conftest", TESTS / area / "conftest.py")
    mod = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(mod)
    return mod


def test_train_register_promote_explore_nearline_recommend_drift(
    small_dataset: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from feature_repo import store as fs
    from monitoring.drift import run_drift
    from monitoring.judgments import default_reference_path, load_judgments
    from seren.cli import main as seren_main
    from seren.exploration.clusters import Clusters
    from seren.exploration.pair_table import TABLE_FILE, load_pair_table
    from seren.exploration.workflow import run_evaluate
    from seren.nearline import NearlineConfig, run_nearline
    from seren.profiles.io import build_profiles_file
    from seren.publish import push_pair_table
    from seren.registry import Registry
    from seren.registry.registry import MODEL_DIR
    from seren.registry.steps import export_step, register_step, validate_step
    from seren.registry.triton_deploy import TritonControl, reference_scores
    from seren.serengpt.align import align_artifact
    from seren.serengpt.evaluate import evaluate_artifacts
    from seren.serengpt.labeling import run_labeling
    from seren.serengpt.recipe import recipe_from_card
    from seren.serengpt.sft import distill_artifact, read_model_card
    from serving.client import SerenClient
    from serving.triton import TritonServer

    RedisServer = _conftest("features").RedisServer
    build_store = _conftest("recommend").build_store
    write_envs = _conftest("registry").write_envs

    # 1. training: the serengpt_training stages one at a time, each the library call its component
    # makes (the DAG itself is pipelines/serengpt_training; kfp.local would add a start-up per task)
    train, base = tmp_path / "train", str(tiny_model_dir)
    build_profiles_file(small_dataset, train / "profiles.parquet", base, 48, None, 0.4, "none", None, 2, True)
    run_labeling(small_dataset, train / "profiles.parquet", train / "training_data", base_model=base, seed=0)
    lora = {"max_examples": 16, "batch_size": 4, "progress": False}
    distill_artifact(train / "training_data", train / "sft", base, max_steps=2, **lora)
    align_artifact(train / "training_data", train / "sft", train / "align", loss="ipo", max_steps=1, **lora)
    model_dir = train / "final"
    models = {"zero-shot base LLM": base, "SFT": str(train / "sft"), "SFT+IPO": str(train / "align")}
    evaluate_artifacts(train / "training_data", small_dataset, models, train / "eval", model_out=model_dir)
    card = read_model_card(model_dir)
    assert card["selection"]["chosen"] in ("SFT", "SFT+IPO") and (model_dir / "model.safetensors").is_file()

    # 2. export + validate: parity gates pass, and the validated judgments become the drift reference
    export_step(model_dir, tmp_path / "export", tensorrt=False)
    report, _ = validate_step(
        model_dir,
        tmp_path / "export",
        tmp_path / "train" / "training_data",
        tmp_path / "validation.json",
        dataset_dir=small_dataset,
        judgments_path=tmp_path / "validation_judgments.parquet",
    )
    assert report["passed"] is True, report["gates"]
    reference = load_judgments(default_reference_path())
    assert len(reference) == len(pd.read_parquet(tmp_path / "validation_judgments.parquet")) > 0

    # 3. register, then promote to dev whose environment is a live tritonserver (model control keyed)
    monkeypatch.setenv("SEREN_TRITON_CONTROL_KEY", secrets.token_urlsafe(24))
    repo = tmp_path / "triton_repo"
    repo.mkdir()
    with contextlib.ExitStack() as stack:
        triton = stack.enter_context(
            TritonServer(repo, log_file=tmp_path / "tritonserver.log", backend_dir=tmp_path / "backends")
        )
        envs = write_envs(
            tmp_path / "environments.yaml",
            tmp_path / "registry",
            {"dev": {"model_repository": str(repo), "triton_url": triton.http_url, "verify": "none"}},
        )
        man = register_step(
            model_dir,
            tmp_path / "export",
            tmp_path / "validation.json",
            None,
            None,
            tmp_path / "registered.json",
            environments=str(envs),
        )
        reg = Registry(tmp_path / "registry")
        assert reg.versions("serengpt") == [man["version"]] == [1]
        from seren.registry.steps import deploy_step

        dep = deploy_step(man["version"], tmp_path / "deploy.json", env="dev", environments=str(envs))
        assert dep["deployed"] is True and dep["result"] == "ok", dep
        assert dep["deployment"]["verification"] == "live" and dep["deployment"]["smoke"]["max_abs_diff"] <= 1e-3
        assert reg.pointer("serengpt", "dev").version == 1
        control = TritonControl(triton.http_url)
        assert control.loaded_versions("serengpt") == [1] and control.loaded_versions("serengpt_packed") == [1]
        with SerenClient(triton.http_url) as client:
            served = client.score(["likes jazz and hiking"], ["a cookbook of Sichuan food"])
        vdir = reg.local_copy("serengpt", 1)
        served_model = vdir / MODEL_DIR  # what nearline tokenizes with (card, budget)
        expected = reference_scores(
            vdir / "onnx" / "model.onnx", served_model, ["likes jazz and hiking"], ["a cookbook of Sichuan food"]
        )
        np.testing.assert_allclose(served, expected, atol=1e-4)  # Triton serves the registered graph
        assert recipe_from_card(read_model_card(served_model))["token_budget"] == 48

        # 4. an exploration run on the same data: clusters, novelty LLM, its pair table, seqrec; published
        pub = tmp_path / "exploration"
        work = tmp_path / "exploration_work"
        dirs = _conftest("components").exploration_stage_dirs(
            small_dataset, work, str(tiny_model_dir), max_steps=8, batch_size=8, seqrec_epochs=3
        )
        run_evaluate(
            *(dirs[s] for s in ("clusters", "transitions", "novelty_finetune", "feedback_alignment", "pair_table")),
            work / "evaluate",
            dataset_dir=small_dataset,
            publish=pub,
            seqrec_dir=dirs["seqrec_train"],
        )
        table = load_pair_table(pub / TABLE_FILE)
        run_table = load_pair_table(Path(dirs["pair_table"]) / TABLE_FILE)
        pd.testing.assert_frame_equal(table, run_table)  # published = the novelty LLM's table
        assert len(table) == len(Clusters.load(dirs["clusters"]).ids) ** 2 == 36  # every K=2 pair

        # 5. Feast on a real redis-server: batch views, the pair table, then the nearline job on Triton
        redis = RedisServer()
        stack.callback(redis.stop)
        monkeypatch.setenv("SEREN_REDIS_URL", redis.url)
        feast = tmp_path / "features"
        store = build_store("redis", feast, small_dataset)
        assert push_pair_table(table, target="redis", data_dir=feast, to="online") == len(table)
        current = tmp_path / "current_judgments"
        cfg = NearlineConfig(
            dataset_dir=str(small_dataset),
            triton_url=triton.http_url,
            exploration_dir=str(pub),
            model=str(served_model),
            k_main=4,
            k_explore=3,
            n_novel=2,
            top_n=3,
            threshold=0.0,
            feast_target="redis",
            feast_data_dir=str(feast),
            judgments_dir=str(current),
        )
        near = run_nearline(cfg, store=store)
        users = sorted(pd.read_parquet(small_dataset / "interactions.parquet")["user_id"].astype(str).unique())
        assert near["users_refreshed"] > 0 and near["pushed"]["user_candidates"] == near["users_refreshed"]
        rows = fs.get_online(store, "user_candidates", users, max_age=pd.Timedelta(days=100000))
        pushed = rows[rows["status"] == "ok"]
        assert len(pushed) == near["pushed"]["user_candidates"]
        novel = dict(zip(table["cluster_pair"], table["novel_clusters"], strict=True))
        from seren.exploration.clusters import Clusters

        i2c = {str(k): str(v) for k, v in Clusters.load(pub / "clusters").item_to_cluster.items()}
        explored = pushed[pushed["cluster_pair"].astype(str) != ""]
        explored = explored[[len(x) > 0 for x in explored["explore_item_ids"]]]
        assert len(explored) > 0
        for _, r in explored.iterrows():  # every exploration item lies in a novel cluster the LLM's table gives
            allowed = set(list(novel[r["cluster_pair"]])[:2])
            assert {i2c[str(i)] for i in r["explore_item_ids"]} <= allowed, (r["user_id"], r["cluster_pair"])

        # 6. `seren recommend` (the real entry point) reads the slate from Redis
        user = str(explored.iloc[0]["user_id"])
        with pytest.raises(SystemExit) as exit_info:
            seren_main(
                ["recommend", "--user", user, "--target", "redis", "--features-dir", str(feast), "--json"]
                + ["--now", "watermark", "--k", "7"]  # 4 main + 2 serendipity + 1 exploration slots
            )
            raise SystemExit(0)
        out = capsys.readouterr()
        assert exit_info.value.code in (0, None), out.err
        slate = json.loads(out.out)
        sources = [s["source"] for s in slate["slate"]]
        assert {s: sources.count(s) for s in set(sources)} == {"main": 4, "serendipity": 2, "exploration": 1}, slate
        assert slate["fallbacks"] == []
        row = explored.iloc[0]
        assert [s["item_id"] for s in slate["slate"] if s["source"] == "exploration"] == list(row["explore_item_ids"])[
            : sources.count("exploration")
        ]
        assert {s["item_id"] for s in slate["slate"] if s["source"] == "serendipity"} <= set(row["candidate_item_ids"])

        # 7. drift of the nearline judgments against the validation reference
        produced = load_judgments(current)
        assert len(produced) == near["items_scored"] > 0  # one judgment per scored (user, candidate)
        res = run_drift(
            default_reference_path(), current, window="all", reports_dir=tmp_path / "reports", workspace=False
        )
        assert res["rows"]["reference"] == len(reference)
        assert res["rows"]["current"] == res["rows"]["current_all"] == len(produced)
        assert res["status"] in ("pass", "fail") and Path(res["reports_dir"], "summary.json").is_file()
