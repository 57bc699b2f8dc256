"""`seren serengpt train|evaluate|score` end to end on the small synthetic dataset and the tiny model;
`train` runs the serengpt_training pipeline in kfp.local (one run shared by the module).

The commands run in-process through `seren.cli.main` (the console-script entry point), so the
one-line error handling is the real one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from seren.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(small_dataset: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One `seren serengpt train` (the serengpt_training pipeline in kfp.local) shared by this module,
    with its own SEREN_HOME (where the run registers and deploys to dev)."""
    import contextlib
    import io

    base = tmp_path_factory.mktemp("serengpt_cli")
    home, run_dir = base / "home", base / "run"
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEREN_HOME", str(home))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([
                    "serengpt", "train", "--data", str(small_dataset), "--out", str(run_dir),
                    "--base-model", str(tiny_model_dir), "--max-steps", "2", "--pref-steps", "1",
                    "--max-examples", "16", "--batch-size", "4", "--pref-batch-size", "4", "--json",
                ])  # fmt: skip
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
    return {"code": code, "out": out.getvalue(), "err": err.getvalue(), "home": home, "run_dir": run_dir}


@pytest.fixture(scope="module")
def run_dir(trained: dict) -> Path:
    assert trained["code"] == 0, trained["err"]
    return trained["run_dir"]


def test_train_writes_models_eval_and_summary(small_dataset, trained, run_dir):
    res = json.loads(trained["out"])
    model = Path(res["model_dir"])
    # the shipped model: SFT+alignment or SFT by the alignment gate, with the calibration map in its card
    assert model.is_relative_to(run_dir) and (model / "model.safetensors").is_file()
    assert res["selection"]["chosen"] in ("SFT", "SFT+alignment")
    assert (Path(res["aligned_model_dirs"]["ipo"]) / "model.safetensors").is_file()
    assert set(res["ablation"]) == {
        "popularity",
        "unexpectedness x relevance",
        "zero-shot base LLM",
        "SFT",
        "SFT+alignment",
    }
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (run_dir / "run.log").is_file() and summary["model_dir"] == res["model_dir"]
    assert (run_dir / "model").resolve() == model.resolve()  # the stable path to the shipped model
    for f in ("ablation.md", "ablation.html", "calibration.json"):
        assert (Path(summary["eval_dir"]) / f).is_file(), f
    td = Path(summary["training_data_dir"])
    assert (td / "sft_train.parquet").is_file()
    card = json.loads((model / "model_card.json").read_text())
    assert card["metrics"]["held_out"]["n"] == res["metrics"]["n"] > 0
    assert card["source"]["dataset_dir"] == str(small_dataset.resolve())
    assert card["calibration"] == res["selection"]["calibration"]
    assert card["selection"]["chosen"] == res["selection"]["chosen"]
    sft_data = card["data"]["sft"] if res["selection"]["chosen"] == "SFT+alignment" else card["data"]
    assert sft_data["n_train"] <= 16
    # the held-out users never appear in the training examples
    train_users = set(pd.read_parquet(td / "sft_train.parquet")["user_id"])
    assert train_users.isdisjoint(set(pd.read_parquet(td / "eval_candidates.parquet")["user_id"]))
    # progress: one line per pipeline task on stderr, stdout is only the JSON
    for task in ("cognition-profiles", "label-data", "distill", "align", "evaluate"):
        assert f"done   {task}" in trained["err"], task


def test_train_is_the_pipeline_run(trained, run_dir, monkeypatch):
    """`seren serengpt train` runs pipelines/serengpt_training (the one definition of the DAG): every
    task ran, validation passed, and the passed branch registered and deployed to dev."""
    from monitoring.judgments import default_reference_path, load_judgments
    from seren.registry import open_registry

    monkeypatch.setenv("SEREN_HOME", str(trained["home"]))
    result = json.loads((run_dir / "result.json").read_text())
    assert result["pipeline"] == "seren-serengpt-training" and result["params"]["source"] == "dataset"
    tasks = {name.split("/")[-1]: t for name, t in result["tasks"].items()}
    for step in ("ingest", "cognition-profiles", "label-data", "distill", "align", "evaluate", "export-scorer"):
        assert step in tasks, f"{step} did not run: {sorted(tasks)}"
    model = next(Path(result["run_dir"]).rglob("align/model"))
    card = json.loads((model / "model_card.json").read_text())
    assert card["stage"] == "sft+ipo" and (model / "model.safetensors").is_file()
    report = next(Path(result["run_dir"]).rglob("evaluate/report")).read_text()
    for row in ("popularity", "unexpectedness x relevance", "zero-shot base LLM", "| SFT |", "SFT+alignment"):
        assert row in report
    assert "roc_auc" in json.dumps(tasks["evaluate"])
    shipped = next(Path(result["run_dir"]).rglob("evaluate/model"))
    card = json.loads((shipped / "model_card.json").read_text())
    assert card["stage"] == ("sft+ipo" if card["selection"]["alignment_kept"] else "sft")
    assert card["calibration"]["method"] in ("platt", "isotonic", "identity")
    assert "Shipped model: **" + card["selection"]["chosen"] in report
    cal = json.loads(next(Path(result["run_dir"]).rglob("evaluate/results/calibration.json")).read_text())
    assert cal == card["calibration"]
    # validation records the exported model's judgments; a passed validation makes them monitoring's reference
    judged = load_judgments(next(Path(result["run_dir"]).rglob("validate-scorer/judgments")))
    validation = json.loads(next(Path(result["run_dir"]).rglob("validate-scorer/report")).read_text())
    assert validation["passed"] is True, validation["gates"]  # ONNX-vs-torch parity of the tiny model
    assert tasks["validate-scorer"]["parameters"]["Output"] == "true"
    assert len(judged) > 0 and len(load_judgments(default_reference_path())) == len(judged)
    # kfp.local takes the false branch silently when a condition cannot be evaluated: the
    # validation-passed branch must have run, i.e. register and deploy wrote their outputs
    assert {"register-model", "deploy-model"} <= set(tasks), sorted(tasks)
    version = tasks["register-model"]["parameters"]["version"]
    assert version == 1 and Path(tasks["register-model"]["artifacts"]["registered"]["uri"]).exists()
    assert tasks["deploy-model"]["parameters"]["deployed"] == "true"
    assert open_registry().versions("serengpt") == [1]
    assert json.loads(trained["out"])["registered_version"] == 1


def test_score_reads_profile_and_items_from_the_dataset(capsys, small_dataset, trained, run_dir):
    from seren.data.dataset import load_dataset

    ds = load_dataset(small_dataset)
    user = str(ds.interactions["user_id"].iloc[0])
    items = ds.items["item_id"].astype(str).tolist()[:3]
    model = json.loads(trained["out"])["aligned_model_dirs"]["ipo"]
    code, out, err = run(
        capsys, "serengpt", "score", "--model", str(model), "--user", user, "--items", ",".join(items), "--json"
    )
    assert code == 0, err
    res = json.loads(out)
    assert [r["item_id"] for r in res["scores"]] == items
    assert all(0.0 < r["score"] < 1.0 for r in res["scores"])
    assert res["profile_text"].strip()
    code, out, _ = run(capsys, "serengpt", "score", "--model", str(model), "--user", user, "--items", items[0])
    assert code == 0 and out.startswith(items[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody", "--items", "ITEM"], "unknown user id 'nobody'"),
        (["--user", "USER", "--items", "ITEM,nothing"], "unknown item id(s) (e.g. 'nothing')"),
        (["--user", "USER", "--items", " , "], "empty candidate list"),
    ],
)
def test_score_bad_ids_are_one_line_errors(capsys, small_dataset, run_dir, args, message):
    from seren.data.dataset import load_dataset

    ds = load_dataset(small_dataset)
    subst = {"USER": str(ds.interactions["user_id"].iloc[0]), "ITEM": str(ds.items["item_id"].iloc[0])}
    args = [subst.get(a, a.replace("ITEM", subst["ITEM"])) for a in args]
    code, out, err = run(
        capsys,
        "serengpt",
        "score",
        "--model",
        json.loads((run_dir / "summary.json").read_text())["aligned_model_dirs"]["ipo"],
        "--data",
        str(small_dataset),
        *args,
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err and "Fix:" in err


def test_not_a_causal_lm_and_empty_training_set_are_one_line_errors(capsys, small_dataset, tmp_path):
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert"}))
    code, out, err = run(
        capsys, "serengpt", "score", "--model", str(bert), "--user", "u", "--items", "i", "--data", str(small_dataset)
    )
    assert code == 2 and err.count("\n") == 1 and "not a causal language model" in err
    code, _, err = run(capsys, "serengpt", "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err
    assert not (tmp_path / "o").exists()
    code, _, err = run(
        capsys, "serengpt", "train", "--data", str(small_dataset), "--out", str(tmp_path / "o"), "--loss", "ppo"
    )
    assert code == 2 and err.count("\n") == 1 and "'--loss'" in err and "'ppo' is not one of 'ipo', 'dpo'" in err
    assert not (tmp_path / "o").exists()


def test_evaluate_a_finished_run(capsys, small_dataset, run_dir, tmp_path):
    code, out, err = run(
        capsys,
        "serengpt",
        "evaluate",
        "--run",
        str(run_dir),
        "--data",
        str(small_dataset),
        "--out",
        str(tmp_path / "ev"),
        "--json",
    )
    assert code == 0, err
    res = json.loads(out)
    assert res["order"][:2] == ["popularity", "unexpectedness x relevance"] and "SFT+IPO" in res["order"]
    assert (tmp_path / "ev" / "ablation.md").is_file()
    code, _, err = run(capsys, "serengpt", "evaluate")
    assert code == 2 and "nothing to evaluate" in err
