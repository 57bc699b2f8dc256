"""The serengpt_training pipeline runs end to end in kfp.local on the tiny model and a small dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pipelines as P


def test_serengpt_training_pipeline_local(tiny_model_dir: Path, tmp_path: Path) -> None:
    params = {
        "n_users": 60,
        "n_items": 120,
        "seed": 3,
        "base_model": str(tiny_model_dir),
        "sft_steps": 2,
        "pref_steps": 1,
        "max_examples": 16,
        "batch_size": 4,
        "feast_data_dir": str(tmp_path / "features"),
    }
    res = P.run_local("serengpt_training", params, pipeline_root=tmp_path / "root")
    tasks = res["tasks"]
    names = set(tasks)
    for step in ("cognition-profiles", "label-data", "distill", "align", "evaluate"):
        assert step in names, f"{step} did not run: {sorted(names)}"
    model = next(Path(res["run_dir"]).rglob("align/model"))
    card = json.loads((model / "model_card.json").read_text())
    assert card["stage"] == "sft+ipo" and (model / "model.safetensors").is_file()
    report = next(Path(res["run_dir"]).rglob("evaluate/report")).read_text()
    for row in ("popularity", "unexpectedness x relevance", "zero-shot base LLM", "| SFT |", "SFT+alignment"):
        assert row in report
    metrics = json.dumps(tasks["evaluate"])
    assert "roc_auc" in metrics
    # the alignment gate picks the shipped model; its card carries the calibration map it is served with
    shipped = next(Path(res["run_dir"]).rglob("evaluate/model"))
    card = json.loads((shipped / "model_card.json").read_text())
    assert card["selection"]["chosen"] in ("SFT", "SFT+alignment")
    assert card["stage"] == ("sft+ipo" if card["selection"]["alignment_kept"] else "sft")
    assert card["calibration"]["method"] in ("platt", "isotonic", "identity")
    assert "Shipped model: **" + card["selection"]["chosen"] in report
    cal = json.loads(next(Path(res["run_dir"]).rglob("evaluate/results/calibration.json")).read_text())
    assert cal == card["calibration"]
    # validation records the exported model's judgments; a passed validation makes them monitoring's reference
    from monitoring.judgments import default_reference_path, load_judgments

    judged = load_judgments(next(Path(res["run_dir"]).rglob("validate-scorer/judgments")))
    validation = json.loads(next(Path(res["run_dir"]).rglob("validate-scorer/report")).read_text())
    # the gates are ONNX-vs-torch parity: the exported tiny model must pass them
    assert validation["passed"] is True, validation["gates"]
    assert tasks["validate-scorer"]["parameters"]["Output"] == "true"
    assert len(judged) > 0 and len(load_judgments(default_reference_path())) == len(judged)
    # kfp.local takes the false branch silently when a condition cannot be evaluated: the
    # validation-passed branch must have run, i.e. register and deploy wrote their outputs
    by_name = {name.split("/")[-1]: t for name, t in tasks.items()}
    assert {"register-model", "deploy-model"} <= set(by_name), sorted(by_name)
    version = by_name["register-model"]["parameters"]["version"]
    assert version == 1 and Path(by_name["register-model"]["artifacts"]["registered"]["uri"]).exists()
    assert by_name["deploy-model"]["parameters"]["deployed"] == "true"
    from seren.registry import open_registry

    assert open_registry().versions("serengpt") == [1]  # the run's registry (SEREN_HOME default)
