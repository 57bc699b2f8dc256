"""evaluate component: unit test via python_func, local test with kfp.local (importers -> evaluate)."""

# no `from __future__ import annotations`: KFP reads the pipeline's parameter annotations
import json
from pathlib import Path

import pytest
from kfp import dsl

from components.evaluate.component import evaluate
from seren.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")


def _kw(artifact, training_data: Path, small_dataset: Path, tiny_model_dir: Path) -> dict:
    return dict(
        training_data=dsl.Dataset(name="td", uri=str(training_data)),
        dataset=dsl.Dataset(name="dataset", uri=str(small_dataset)),
        sft_model=dsl.Model(name="sft", uri=str(tiny_model_dir)),
        aligned_model=dsl.Model(name="aligned", uri=str(tiny_model_dir)),
        model=artifact(dsl.Model, "model"),
        metrics=artifact(dsl.Metrics, "metrics"),
        report=artifact(dsl.Markdown, "report"),
        report_html=artifact(dsl.HTML, "report_html"),
        results=artifact(dsl.Artifact, "results"),
        base_model=str(tiny_model_dir),
    )


def test_evaluate_component_unit(artifact, training_data: Path, small_dataset: Path, tiny_model_dir: Path) -> None:
    kw = _kw(artifact, training_data, small_dataset, tiny_model_dir)
    evaluate.python_func(**kw)
    m = kw["metrics"].metadata
    # the same weights in three rows score identically
    assert m["zero_shot_base_llm.roc_auc"] == m["sft.roc_auc"] == m["sft_ipo.roc_auc"] == m["roc_auc"]
    # each row's ROC-AUC is sklearn's on the per-candidate scores the component wrote
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    scores = pd.read_parquet(Path(kw["results"].path) / "scores.parquet")
    assert m["n_candidates"] == len(scores) > 0
    for column, key in (
        ("popularity", "popularity.roc_auc"),
        ("unexpectedness x relevance", "unexpectedness_x_relevance.roc_auc"),
        ("SFT+IPO", "sft_ipo.roc_auc"),
    ):
        assert m[key] == pytest.approx(roc_auc_score(scores["label"], scores[column]), abs=1e-12), column
    md = Path(kw["report"].path).read_text()
    assert "| SFT+IPO |" in md and "| popularity |" in md
    assert "<table" in Path(kw["report_html"].path).read_text()
    summary = json.loads((Path(kw["results"].path) / "ablation.json").read_text())
    assert summary["order"][-1] == "SFT+IPO" and (Path(kw["results"].path) / "scores.parquet").is_file()


def test_evaluate_component_bad_training_data_unit(
    artifact, small_dataset: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    kw = _kw(artifact, tmp_path / "nothing", small_dataset, tiny_model_dir)
    with pytest.raises(DataError, match="not a training-data directory"):
        evaluate.python_func(**kw)
    assert not Path(kw["report"].path).exists()


def test_evaluate_component_local(kfp_local, training_data: Path, small_dataset: Path, tiny_model_dir: Path) -> None:
    @dsl.pipeline(name="evaluate-local-test")
    def pipe(td_uri: str, data_uri: str, model_uri: str):
        td = dsl.importer(artifact_uri=td_uri, artifact_class=dsl.Dataset, reimport=False)
        data = dsl.importer(artifact_uri=data_uri, artifact_class=dsl.Dataset, reimport=False)
        m = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model, reimport=False)
        evaluate(
            training_data=td.output,
            dataset=data.output,
            sft_model=m.output,
            aligned_model=m.output,
            base_model=model_uri,
        )

    pipe(td_uri=str(training_data), data_uri=str(small_dataset), model_uri=str(tiny_model_dir))
    reports = sorted(Path(kfp_local).rglob("evaluate/report"))
    assert len(reports) == 1, "the evaluate task did not write its report"
    assert "| SFT+IPO |" in reports[0].read_text()
