"""The exploration stages as directory-in, directory-out functions.

Each KFP component calls exactly one of these; the DAG that chains them is defined once, in
pipelines/exploration/pipeline.py (run it locally with `seren pipeline run exploration --local`).
Every stage returns flat numeric metrics (what KFP's Metrics artifact can log) and writes its
outputs atomically.

Published layout (``publish``; default ``$SEREN_HOME/exploration``), what `seren explore` reads:
``clusters/``, ``pair_table.parquet``, ``report.json`` and ``exploration.json`` (dataset path,
sources and creation time).

Why one file over ~400 lines: it is the exploration pipeline's stage table, one short function
per component (plus publishing and `explore_user`, which reads what they publish); each stage's
real work lives in its own module (clusters, transitions, novelty, alignment, pair_table, seqrec).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from seren.errors import ConfigError
from seren.io import atomic_dir, write_json, write_text
from seren.metrics import flatten_metrics as flat_metrics
from seren.paths import exploration_dir

log = logging.getLogger(__name__)

FEEDBACK_FILE = "feedback.parquet"


def default_publish_dir() -> Path:
    return exploration_dir()


def run_clusters(
    dataset_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    n_top: int = 8,
    n_sub: int = 5,
    seed: int = 0,
    n_keywords: int = 3,
    naming_backend: str = "none",
) -> dict[str, float]:
    """Dataset items -> interest clusters directory."""
    from seren.data import load_dataset
    from seren.exploration.clusters import build_clusters

    backend = None
    if naming_backend and naming_backend != "none":
        from seren.llm.backends import get_backend

        backend = get_backend(naming_backend)
    ds = load_dataset(dataset_dir)
    clusters = build_clusters(ds.items, n_top=n_top, n_sub=n_sub, seed=seed, n_keywords=n_keywords, backend=backend)
    clusters.save(out_dir)
    return flat_metrics(clusters.metrics)


def run_transitions(
    dataset_dir: str | os.PathLike[str],
    clusters_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    min_count: int = 1,
    test_frac: float = 0.2,
    window: int = 3,
) -> dict[str, float]:
    """Transitions for the pipeline; window=3 (later novel clusters as extra training targets) is
    the setting measured to beat the baselines in benchmarks/novelty_quality.py."""
    from seren.data import load_dataset
    from seren.exploration.clusters import Clusters
    from seren.exploration.transitions import build_transitions

    ds = load_dataset(dataset_dir)
    clusters = Clusters.load(clusters_dir)
    tr = build_transitions(
        ds.interactions,
        clusters.item_to_cluster,
        clusters.descriptions,
        min_count=min_count,
        test_frac=test_frac,
        window=window,
    )
    tr.save(out_dir)
    return flat_metrics(tr.metrics)


def run_novelty_finetune(
    transitions_dir: str | os.PathLike[str],
    clusters_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    base_model: str = "smollm2",
    max_steps: int = 200,
    learning_rate: float = 1e-3,
    lora_r: int = 16,
    batch_size: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """LoRA SFT into the stage dir `out_dir` (the merged model in `out_dir/model`, with the cluster
    set it answers in; a re-run with the same data and settings resumes or reuses it)."""
    from seren.exploration.clusters import Clusters
    from seren.exploration.novelty import train_novelty
    from seren.exploration.transitions import Transitions
    from seren.serengpt.sft import read_model_card

    tr = Transitions.load(transitions_dir)
    clusters = Clusters.load(clusters_dir)
    model_dir = train_novelty(
        base_model,
        tr,
        clusters.descriptions,
        out_dir,
        max_steps=max_steps,
        learning_rate=learning_rate,
        lora_r=lora_r,
        lora_alpha=2 * lora_r,
        batch_size=batch_size,
        seed=seed,
    )
    card = read_model_card(model_dir)
    tm = {k: v for k, v in card.get("train_metrics", {}).items() if not isinstance(v, list)}
    return flat_metrics({**tm, "n_train": card.get("data", {}).get("n_train", 0)})


def run_feedback_alignment(
    dataset_dir: str | os.PathLike[str],
    clusters_dir: str | os.PathLike[str],
    transitions_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    min_support: int = 3,
    prior: float = 5.0,
    seed: int = 0,
) -> dict[str, float]:
    """Aggregate novel-exposure feedback and fit the alignment scorer (saved with its feedback)."""
    from seren.data import load_dataset
    from seren.exploration.alignment import TripleFeatures, aggregate_feedback, novel_exposures, train_aligner
    from seren.exploration.clusters import Clusters
    from seren.exploration.transitions import Transitions

    ds = load_dataset(dataset_dir)
    clusters = Clusters.load(clusters_dir)
    tr = Transitions.load(transitions_dir)
    exposures = novel_exposures(ds.interactions, clusters.item_to_cluster)
    feedback = aggregate_feedback(exposures, tr.cutoff, prior=prior)
    aligner = train_aligner(
        feedback, TripleFeatures(clusters, exposures, tr.sequences, tr.cutoff), min_support=min_support, seed=seed
    )
    aligner.save(out_dir)
    feedback.to_parquet(Path(out_dir) / FEEDBACK_FILE, index=False)
    return flat_metrics({k: v for k, v in (aligner.metrics or {}).items() if k != "coefficients"})


def run_pair_table(
    model_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    aligner_dir: str | os.PathLike[str] | None = None,
    n: int = 3,
    n_candidates: int = 10,
    shard_size: int = 64,
    method: str = "auto",
    work_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """All N^2 pairs -> `out_dir/pair_table.parquet` (shards in `work_dir`, so a retried step
    resumes); the Feast push is the application's (`seren.publish.push_pair_table`)."""
    from seren.exploration.alignment import Aligner
    from seren.exploration.novelty import NoveltyModel
    from seren.exploration.pair_table import (
        MANIFEST,
        TABLE_FILE,
        build_pair_table,
        load_pair_table,
        table_metrics,
    )

    model = NoveltyModel.from_pretrained(model_dir)
    aligner = Aligner.load(aligner_dir) if aligner_dir else None
    work = Path(work_dir) if work_dir else Path(out_dir)
    table_f = build_pair_table(
        model,
        work,
        n=n,
        n_candidates=n_candidates,
        aligner=aligner,
        shard_size=shard_size,
        method=method,
        progress=progress,
    )
    table = load_pair_table(table_f)
    if work.resolve() != Path(out_dir).resolve():
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        shutil.copy2(table_f, Path(out_dir) / TABLE_FILE)
        shutil.copy2(work / MANIFEST, Path(out_dir) / MANIFEST)
    stats = json.loads((work / MANIFEST).read_text()).get("stats", {})
    metrics = {
        **table_metrics(table, model.ids),
        **{k: v for k, v in stats.items() if k in ("pairs_per_s", "seconds", "shards_done_before", "shards_computed")},
    }
    return flat_metrics(metrics)


def _md_table(rows: dict[str, dict[str, float]]) -> str:
    cols = list(next(iter(rows.values())))
    lines = ["| ranker | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    lines += [f"| {name} | " + " | ".join(f"{v[c]:.3f}" for c in cols) + " |" for name, v in rows.items()]
    return "\n".join(lines)


def run_evaluate(
    clusters_dir: str | os.PathLike[str],
    transitions_dir: str | os.PathLike[str],
    model_dir: str | os.PathLike[str],
    aligner_dir: str | os.PathLike[str],
    table_dir: str | os.PathLike[str],
    report_dir: str | os.PathLike[str],
    n: int = 3,
    max_test: int | None = 400,
    seed: int = 0,
    dataset_dir: str | os.PathLike[str] | None = None,
    publish: str | os.PathLike[str] | None = None,
    seqrec_dir: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, float], str]:
    """Novelty gates + baselines, alignment gain, table quality -> report.json/report.md.

    With `publish` the clusters, table and report are also copied where `seren explore` reads."""
    from seren.exploration.alignment import alignment_gain
    from seren.exploration.clusters import Clusters
    from seren.exploration.novelty import NoveltyModel, evaluate_novelty
    from seren.exploration.pair_table import load_pair_table, table_metrics
    from seren.exploration.transitions import Transitions

    clusters = Clusters.load(clusters_dir)
    tr = Transitions.load(transitions_dir)
    model = NoveltyModel.from_pretrained(model_dir)
    nov = evaluate_novelty(model, tr, n=n, max_test=max_test, seed=seed)
    table = load_pair_table(table_dir)
    unaligned = {(a, b): list(c)[:n] for a, b, c in zip(table["c1"], table["c2"], table["llm_clusters"], strict=True)}
    aligned = {(a, b): list(c)[:n] for a, b, c in zip(table["c1"], table["c2"], table["novel_clusters"], strict=True)}
    feedback_f = Path(aligner_dir) / FEEDBACK_FILE
    gain = alignment_gain(unaligned, aligned, pd.read_parquet(feedback_f)) if feedback_f.is_file() else {}
    report = {
        "clusters": clusters.metrics,
        "transitions": tr.metrics,
        "novelty": {k: v for k, v in nov.items() if k not in ("table", "examples")},
        "alignment": gain,
        "pair_table": table_metrics(table, clusters.ids),
        "seqrec": _seqrec_metrics(seqrec_dir),
    }
    md = [
        "# Interest exploration report",
        "",
        f"Clusters: {clusters.metrics.get('n_clusters')} (silhouette {clusters.metrics.get('silhouette_leaf')}, unique descriptions {clusters.metrics.get('description_unique_share')})",
        f"Held-out novel transitions: {nov['n_test']} over {nov['n_test_pairs']} pairs",
        "",
        "## Novelty LLM gates",
        "",
        f"- exact-match rate (unconstrained): {nov['exact_match_rate']:.3f} (target >= 0.90) {'PASS' if nov['gates']['exact_match']['passed'] else 'FAIL'}",
        f"- recall@{n}: {nov['llm_recall']:.3f} (target >= 0.015) {'PASS' if nov['gates']['recall']['passed'] else 'FAIL'}",
        f"- beats every baseline at recall@{n}: {'PASS' if nov['gates']['beats_baselines']['passed'] else 'FAIL'} (best baseline {nov['best_baseline_recall']:.3f})",
        "",
        _md_table(nov["recall"]),
        "",
        "## Feedback alignment (held-out replay)",
        "",
    ]
    if gain:
        md += [
            f"- un-aligned table: positive rate {gain['unaligned']['rate']:.3f} over {gain['unaligned']['trials']} matched exposures",
            f"- aligned (best-of-n): positive rate {gain['aligned']['rate']:.3f} over {gain['aligned']['trials']} matched exposures",
            f"- gain: {gain['gain_abs']:+.3f} ({gain['gain_rel']:+.1%})",
        ]
    else:
        md.append("- no feedback available")
    sq = report["seqrec"]
    md += ["", "## Sequence recommender restricted to novel clusters", ""]
    if "hr_at_10" in sq:
        md += [
            f"- next new item HR@10 {sq['hr_at_10']:.3f} / NDCG@10 {sq.get('ndcg_at_10', float('nan')):.3f} (popularity {sq.get('pop_hr_at_10', float('nan')):.3f} / {sq.get('pop_ndcg_at_10', float('nan')):.3f})",
            *[f"- {key}: {sq[key]:.3f}" for key in sorted(sq) if "novel_" in key or "new_cluster" in key],
        ]
    else:
        md.append(f"- {sq.get('status', 'not trained')}")
    md_text = "\n".join(md) + "\n"
    report_dir = Path(report_dir)
    write_json(report_dir / "report.json", report)
    write_text(report_dir / "report.md", md_text)
    if publish:
        publish_outputs(
            publish,
            clusters_dir=clusters_dir,
            table_dir=table_dir,
            report_dir=report_dir,
            dataset_dir=dataset_dir,
            model_dir=model_dir,
            seqrec_dir=seqrec_dir,
        )
    metrics = flat_metrics(
        {
            "novelty": {k: v for k, v in report["novelty"].items() if k != "recall"},
            "recall": nov["recall"],
            "alignment": gain,
            "pair_table": report["pair_table"],
            "seqrec": report["seqrec"],
        }
    )
    return metrics, md_text


def _seqrec_metrics(seqrec_dir: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The sequence recommender's own held-out metrics (written by seqrec.train_and_evaluate)."""
    if not seqrec_dir:
        return {"status": "not trained in this run"}
    f = Path(seqrec_dir) / "metrics.json"
    return json.loads(f.read_text()) if f.is_file() else {"status": f"no metrics.json in {seqrec_dir}"}


def publish_outputs(
    publish: str | os.PathLike[str],
    clusters_dir: str | os.PathLike[str],
    table_dir: str | os.PathLike[str],
    report_dir: str | os.PathLike[str] | None = None,
    dataset_dir: str | os.PathLike[str] | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    seqrec_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Copy what serving needs into one directory, swapped in atomically."""
    from seren.exploration.pair_table import TABLE_FILE

    out = Path(publish)
    table_f = Path(table_dir) / TABLE_FILE if Path(table_dir).is_dir() else Path(table_dir)
    with atomic_dir(out) as tmp:
        shutil.copytree(clusters_dir, tmp / "clusters")
        shutil.copy2(table_f, tmp / TABLE_FILE)
        if report_dir and (Path(report_dir) / "report.json").is_file():
            shutil.copy2(Path(report_dir) / "report.json", tmp / "report.json")
            shutil.copy2(Path(report_dir) / "report.md", tmp / "report.md")
        if seqrec_dir and (Path(seqrec_dir) / "model.pt").is_file():
            shutil.copytree(seqrec_dir, tmp / "seqrec", ignore=shutil.ignore_patterns("checkpoint.pt"))
        write_json(
            tmp / "exploration.json",
            {
                "dataset": str(Path(dataset_dir).resolve()) if dataset_dir else None,
                "model": str(model_dir) if model_dir else None,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
    return out


def explore_user(
    user_id: str,
    data: str | os.PathLike[str] | None = None,
    table: str | os.PathLike[str] | None = None,
    clusters: str | os.PathLike[str] | None = None,
    published: str | os.PathLike[str] | None = None,
    n: int = 3,
    k: int = 10,
    seqrec: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """What serving does for one user: last two clusters -> table lookup -> restricted recs, through
    `seren.exploration.lookup.explore_users` (the one definition nearline uses too).

    A user with one cluster uses the pair (c, c); a pair missing from the table uses the table's
    documented fallback (`PairLookup`). Restricted recommendations come from the sequence
    recommender when one is published beside the table, else they are reported as unavailable."""
    from seren.data import load_dataset
    from seren.errors import DataError
    from seren.exploration.clusters import Clusters
    from seren.exploration.lookup import explore_users
    from seren.exploration.pair_table import TABLE_FILE, PairLookup, load_pair_table
    from seren.exploration.seqrec import SeqRecModel, user_histories

    pub = Path(published) if published else default_publish_dir()
    manifest_f = pub / "exploration.json"
    manifest = json.loads(manifest_f.read_text()) if manifest_f.is_file() else {}
    if data is None and not manifest.get("dataset"):
        raise ConfigError(
            f"no exploration outputs at {pub} and no --data given",
            "run `seren pipeline run exploration --local` first, or pass --data DIR --table FILE --clusters DIR",
        )
    data_dir = Path(data) if data is not None else Path(manifest["dataset"])
    cl = Clusters.load(clusters if clusters is not None else pub / "clusters")
    tbl = load_pair_table(table if table is not None else pub / TABLE_FILE)
    ds = load_dataset(data_dir, validate=False)
    inter = ds.interactions[ds.interactions["user_id"].astype(str) == str(user_id)]
    if inter.empty:
        raise DataError(
            f"user {user_id!r} has no interactions in {data_dir}",
            "pass a user id from the dataset (see interactions.parquet)",
        )
    history = next(iter(user_histories(inter).values()), [])
    model_dir = Path(seqrec) if seqrec else pub / "seqrec"
    model = SeqRecModel.load(model_dir) if (model_dir / "model.pt").is_file() else None
    slate = explore_users({str(user_id): history}, inter, cl.item_to_cluster, PairLookup(tbl), model, k=k, n_novel=n)[
        str(user_id)
    ]
    if not slate.last_clusters:
        raise DataError(
            f"user {user_id!r} has no positive engagement with a clustered item",
            "exploration starts from a user's recent interests; try another user",
        )
    desc = cl.descriptions
    seen = {cl.item_to_cluster.get(i) for i in history}
    out: dict[str, Any] = {
        "user_id": str(user_id),
        "last_clusters": [{"cluster_id": c, "description": desc.get(c, "")} for c in dict.fromkeys(slate.lookup_pair)],
        "novel_clusters": [
            {"cluster_id": c, "description": desc.get(c, ""), "score": s, "new_to_user": c not in seen}
            for c, s in zip(slate.novel_clusters, slate.novel_scores, strict=True)
        ],
        "source": slate.source,
    }
    item = ds.items.set_index(ds.items["item_id"].astype(str))
    out["recommendations"] = [
        {
            "item_id": i,
            "title": str(item.at[i, "title"]) if i in item.index else "",
            "cluster_id": cl.item_to_cluster.get(i, ""),
            "score": sc,
        }
        for i, sc in slate.items
    ]
    if model is None:
        status = (
            f"unavailable: no sequence recommender at {model_dir} (run the exploration pipeline, or pass --seqrec DIR)"
        )
    elif not slate.novel_clusters:
        status = "unavailable: no novel clusters for this user"
    else:
        status = "ok"
    out["recommendations_status"] = status
    return out
