"""The exploration pipeline end to end with kfp.local (every component in its own subprocess),
tiny base model and tiny data; asserts on what the run wrote, not on task statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipelines import run_local


def test_exploration_pipeline_local_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    pub = tmp_path / "published"
    res = run_local(
        "exploration",
        {
            "n_users": 40,
            "n_items": 80,
            "seed": 3,
            "n_top": 3,
            "n_sub": 2,
            "base_model": str(tiny_model_dir),
            "max_steps": 3,
            "min_support": 2,
            "n_candidates": 4,
            "publish_dir": str(pub),
        },  # fmt: skip
        pipeline_root=tmp_path / "root",
    )
    table = pd.read_parquet(Path(res["outputs"]["table"]["path"]) / "pair_table.parquet")
    assert len(table) == 36 and all(not {r.c1, r.c2} & set(r.novel_clusters) for r in table.itertuples())
    tasks = {name.split("/")[-1]: t for name, t in res["tasks"].items()}
    assert {
        "clusters",
        "transitions",
        "novelty-finetune",
        "feedback-alignment",
        "pair-table-tasks",
        "pair-table-shard",  # the ParallelFor iteration (pair_table_shards=1)
        "pair-table-merge",
        "exploration-evaluate",
    } <= set(tasks)
    assert tasks["pair-table-merge"]["artifacts"]["metrics"]["metadata"]["tasks"] == 1
    ev = tasks["exploration-evaluate"]["artifacts"]["metrics"]["metadata"]
    assert ev["pair_table.pairs"] == 36
    # the exact-match rate, recomputed from the run's own model and held-out transitions: the share
    # of held-out (c1, c2) contexts whose unconstrained generation is one of the cluster descriptions
    from seren.exploration.novelty import NoveltyModel
    from seren.exploration.transitions import Transitions

    model = NoveltyModel.from_pretrained(tasks["novelty-finetune"]["artifacts"]["model"]["uri"])
    test = Transitions.load(tasks["transitions"]["artifacts"]["transitions"]["uri"]).test
    pairs = [p for p in zip(test["c1"], test["c2"], strict=True) if p[0] in model.index and p[1] in model.index]
    assert 0 < len(pairs) <= 400  # evaluate samples at most 400
    gen = dict(zip(sorted(set(pairs)), model.generate(sorted(set(pairs))), strict=True))
    exact = sum(gen[p] in set(model.descriptions) for p in pairs) / len(pairs)
    assert ev["novelty.exact_match_rate"] == pytest.approx(exact, abs=1e-12)
    report = json.loads((pub / "report.json").read_text())
    assert report["novelty"]["gates"]["exact_match"]["passed"] == (exact >= 0.9)
    assert report["pair_table"]["pairs_recommending_own_cluster"] == 0
    assert (pub / "clusters" / "clusters.parquet").is_file() and (pub / "seqrec" / "model.pt").is_file()
    assert "hr_at_10" in report["seqrec"] and "seqrec-train" in tasks
    # what `seren explore` serves from the published run: restricted recommendations included
    from seren.data import load_dataset
    from seren.exploration.clusters import Clusters
    from seren.exploration.transitions import cluster_sequences
    from seren.exploration.workflow import explore_user

    ds = load_dataset(json.loads((pub / "exploration.json").read_text())["dataset"])
    seqs = cluster_sequences(ds.interactions, Clusters.load(pub / "clusters").item_to_cluster)
    user = seqs.groupby("user_id").size().idxmax()
    out = explore_user(user, published=pub)
    novel = {c["cluster_id"] for c in out["novel_clusters"]}
    assert (
        out["source"] == "table"
        and out["recommendations"]
        and all(r["cluster_id"] in novel for r in out["recommendations"])
    )
