"""exploration_evaluate component: report (gates, baselines, alignment gain) + publish for `seren explore`."""

import json
from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl

from components.exploration_evaluate.component import exploration_evaluate


@pytest.fixture(scope="module")
def stages(exploration_stages: dict) -> dict:
    """Stage outputs up to the sequence recommender (tests/components/conftest.py)."""
    return exploration_stages


def test_exploration_evaluate_unit(small_dataset: Path, stages: dict, artifact, tmp_path: Path) -> None:
    report, md, metrics = (
        artifact(dsl.Artifact, "report"),
        artifact(dsl.Markdown, "md"),
        artifact(dsl.Metrics, "metrics"),
    )
    exploration_evaluate.python_func(
        dataset=dsl.Dataset(name="d", uri=str(small_dataset)),
        clusters=dsl.Artifact(name="c", uri=stages["clusters"]),
        transitions=dsl.Artifact(name="t", uri=stages["transitions"]),
        model=dsl.Model(name="m", uri=stages["novelty_finetune"]),
        aligner=dsl.Model(name="a", uri=stages["feedback_alignment"]),
        table=dsl.Dataset(name="p", uri=stages["pair_table"]),
        seqrec=dsl.Model(name="s", uri=stages["seqrec_train"]),
        report=report,
        markdown=md,
        metrics=metrics,
        n=2,
        publish_dir=str(tmp_path / "pub"),
    )
    rep = json.loads((Path(report.path) / "report.json").read_text())
    assert set(rep["novelty"]["recall"]) == {"novelty_llm", "random_novel", "most_frequent_for_pair", "cooccurrence"}
    assert rep["pair_table"]["pairs"] == 36
    # the alignment gain, replayed by hand: held-out feedback of the triples each table's top 2 recommends
    table = pd.read_parquet(Path(stages["pair_table"]) / "pair_table.parquet")
    held = pd.read_parquet(Path(stages["feedback_alignment"]) / "feedback.parquet").query("period == 'test'")

    def replay(column: str) -> tuple[int, int]:
        top = {(r.c1, r.c2): list(getattr(r, column))[:2] for r in table.itertuples()}
        hit = [c in top.get((a, b), []) for a, b, c in zip(held.c1, held.c2, held.c_novel, strict=True)]
        return int(held.trials[hit].sum()), int(held.positives[hit].sum())

    (ut, up), (at, ap) = replay("llm_clusters"), replay("novel_clusters")
    al = rep["alignment"]
    assert (al["unaligned"]["trials"], al["unaligned"]["positives"]) == (ut, up) and ut > 0
    assert (al["aligned"]["trials"], al["aligned"]["positives"]) == (at, ap) and at > 0
    assert al["gain_abs"] == pytest.approx(ap / at - up / ut) == metrics.metadata["alignment.gain_abs"]
    # the sequence recommender's section is its own held-out metrics file, unchanged
    seqrec = json.loads((Path(stages["seqrec_train"]) / "metrics.json").read_text())
    assert rep["seqrec"] == seqrec and metrics.metadata["seqrec.pop_hr_at_10"] == seqrec["pop_hr_at_10"]
    text = Path(md.path).read_text()
    assert "exact-match rate" in text and "| cooccurrence |" in text
    for key in ("novelty.exact_match_rate", "novelty.llm_recall", "recall.random_novel.recall@2", "pair_table.pairs"):
        assert key in metrics.metadata
    pub = tmp_path / "pub"
    assert (pub / "pair_table.parquet").is_file() and (pub / "clusters" / "clusters.parquet").is_file()
    assert (pub / "seqrec" / "model.pt").is_file() and not (pub / "seqrec" / "checkpoint.pt").exists()
    assert json.loads((pub / "exploration.json").read_text())["dataset"] == str(small_dataset.resolve())
