"""`seren serengpt train|evaluate|score` end to end on the small synthetic dataset and the tiny model.

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
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serengpt_cli") / "run"


def test_train_writes_models_eval_and_summary(capsys, small_dataset, tiny_model_dir, run_dir):
    code, out, err = run(
        capsys,
        "serengpt", "train", "--data", str(small_dataset), "--out", str(run_dir), "--base-model", str(tiny_model_dir),
        "--max-steps", "2", "--pref-steps", "1", "--max-examples", "16", "--json",
    )  # fmt: skip
    assert code == 0, err
    res = json.loads(out)
    model = Path(res["model_dir"])
    # the shipped model: SFT+IPO or SFT by the alignment gate, with the calibration map in its card
    assert model == run_dir / "final" and (model / "model.safetensors").is_file()
    assert res["selection"]["chosen"] in ("SFT", "SFT+IPO")
    assert (run_dir / "align-ipo" / "model" / "model.safetensors").is_file()
    assert set(res["ablation"]) == {
        "popularity",
        "unexpectedness x relevance",
        "zero-shot base LLM",
        "SFT",
        "SFT+IPO",
    }
    for f in (
        "profiles.parquet",
        "training_data/sft_train.parquet",
        "eval/ablation.md",
        "eval/ablation.html",
        "summary.json",
    ):
        assert (run_dir / f).is_file(), f
    card = json.loads((model / "model_card.json").read_text())
    assert card["metrics"]["held_out"]["n"] == res["metrics"]["n"] > 0
    assert card["source"]["dataset_dir"] == str(small_dataset.resolve())
    assert card["calibration"] == res["selection"]["calibration"]
    assert card["selection"]["chosen"] == res["selection"]["chosen"]
    sft_data = card["data"]["sft"] if res["selection"]["chosen"] == "SFT+IPO" else card["data"]
    assert sft_data["n_train"] <= 16
    # the held-out users never appear in the training examples
    td = run_dir / "training_data"
    train_users = set(pd.read_parquet(td / "sft_train.parquet")["user_id"])
    assert train_users.isdisjoint(set(pd.read_parquet(td / "eval_candidates.parquet")["user_id"]))

    # re-running with the same settings reuses the finished models
    model = run_dir / "align-ipo" / "model"
    stamp = (model / "model.safetensors").stat().st_mtime_ns
    code, out, err = run(
        capsys,
        "serengpt", "train", "--data", str(small_dataset), "--out", str(run_dir), "--base-model", str(tiny_model_dir),
        "--max-steps", "2", "--pref-steps", "1", "--max-examples", "16", "--no-eval", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert (model / "model.safetensors").stat().st_mtime_ns == stamp


def test_score_reads_profile_and_items_from_the_dataset(capsys, small_dataset, run_dir):
    from seren.data.dataset import load_dataset

    ds = load_dataset(small_dataset)
    user = str(ds.interactions["user_id"].iloc[0])
    items = ds.items["item_id"].astype(str).tolist()[:3]
    model = run_dir / "align-ipo" / "model"
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
        str(run_dir / "align-ipo" / "model"),
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
    assert code == 2 and "unknown --loss" in err


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
