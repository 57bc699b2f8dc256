"""Human agreement: closed-form metrics on a tiny fixture, bootstrap/paired/goal logic, baselines on
the hand-made survey, the prompt recipe in model cards (a card without a budget is refused with one
line), and `seren serengpt evaluate --human` end to end on the tiny model."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import average_precision_score

from seren.cli import main
from seren.errors import ConfigError
from seren.serengpt import human as H

_spec = importlib.util.spec_from_file_location(
    "survey_handmade", Path(__file__).resolve().parents[1] / "data" / "survey_handmade.py"
)
handmade = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handmade)


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fixture_dirs(tmp_path_factory):
    return handmade.write_fixture(tmp_path_factory.mktemp("survey"), bom=False)


@pytest.fixture(scope="module")
def survey(fixture_dirs):
    from seren.data.survey import load_survey

    answers, ml = fixture_dirs
    return load_survey(answers, ml)


def test_closed_form_metrics_on_a_tiny_fixture():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.1, 0.4, 0.6])
    # pos > neg pairs: (0.9,0.1) (0.9,0.6) (0.4,0.1) yes, (0.4,0.6) no -> 3/4
    assert H.roc_auc(y, s) == pytest.approx(0.75)
    assert H.roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)  # ties count half
    # ranked 0.9(+) 0.6(-) 0.4(+) 0.1(-): AP = 0.5 * 1 + 0.5 * 2/3
    assert H.average_precision(y, s) == pytest.approx(5 / 6)
    assert H.average_precision(y, s) == pytest.approx(average_precision_score(y, s))
    tied = np.array([0.5, 0.5, 0.9, 0.1])
    assert H.average_precision(y, tied) == pytest.approx(average_precision_score(y, tied))
    x, t = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])
    # centred x = (-1.5,-.5,.5,1.5), t = (-1.5,.5,-.5,1.5): cov 4, var 5 each -> 0.8
    assert H.pearson(x, t) == pytest.approx(0.8)
    assert H.pearson(x, t) == pytest.approx(pearsonr(x, t)[0])
    assert H.spearman(x, t**3) == pytest.approx(spearmanr(x, t**3)[0])
    assert H.pearson(x, np.array([1.0, np.nan, 3.0, 4.0])) == pytest.approx(1.0)  # NA rows skipped
    assert H.roc_auc(np.ones(3), np.arange(3)) is None and H.pearson(x, np.ones(4)) is None


def _frame(n_users: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for k in range(4):
            fm = float(rng.integers(0, 9) / 8 if rng.random() < 0.3 else 0.0)
            rows.append(
                {
                    "user_id": f"u{u}",
                    "label": int(fm > 0),
                    "flag_mean": fm,
                    "s5": rng.integers(1, 6),
                    "s8": np.nan if k == 0 else rng.integers(1, 6),
                }
            )
    return pd.DataFrame(rows)


def test_agreement_intervals_paired_differences_and_goal():
    df = _frame()
    rng = np.random.default_rng(1)
    scores = {"random": rng.random(len(df)), "perfect": df["flag_mean"].to_numpy() + 1e-3 * rng.random(len(df))}
    res = H.agreement(df, scores, n_boot=200, seed=0)
    p = res["rows"]["perfect"]
    assert p["roc_auc"]["value"] == pytest.approx(1.0) and p["pearson_flag_mean"]["value"] == pytest.approx(
        1.0, abs=1e-4
    )
    assert res["rows"]["random"]["kind"] == "baseline" and p["kind"] == "model"
    lo, hi = res["rows"]["random"]["roc_auc"]["ci"]
    assert lo <= res["rows"]["random"]["roc_auc"]["value"] <= hi
    d = res["paired"]["perfect"]["random"]["roc_auc"]
    assert d["diff"] == pytest.approx(1.0 - res["rows"]["random"]["roc_auc"]["value"], abs=1e-4) and d["ci"][0] > 0
    assert res["goal"]["perfect"] == {
        "above_every_baseline_roc_auc": True,
        "above_every_baseline_pearson": True,
        "pearson_above_serenEva": True,
        "met": True,
    }
    assert res["n_rows"] == 160 and res["n_users"] == 40
    md = H.human_markdown(res)
    assert "| perfect | 1.000 [1.000, 1.000]" in md and "goal met" in md


def test_baselines_on_the_handmade_survey(survey, tiny_model_dir):
    from seren.data.movielens import load_movielens
    from seren.profiles.text import load_tokenizer

    cat = load_movielens(Path(survey.dataset.meta["path"]).parent.parent / "ml")
    c = H.human_candidates(survey, load_tokenizer(tiny_model_dir), 200)
    b = H.baseline_scores(c, cat, seed=0)
    key = list(zip(c["user_id"], c["item_id"], strict=True))
    i = key.index(("u2", "4"))
    # m4 (Documentary) vs the other answers m2 (Comedy), m5 (Action): same top "Movies" -> 0.5 each;
    # relevance of m4: 1 positive of 1 rating -> (1 + 1) / (1 + 2)
    assert b["unexpectedness x relevance"][i] == pytest.approx(0.5 * 2 / 3)
    pop = {"1": 3, "2": 1, "3": 1, "4": 1, "5": 0}
    assert b["inverse popularity"] == pytest.approx([1 / (1 + pop[m]) for m in c["item_id"]])
    j = key.index(("u2", "5"))  # predictedRating NA -> the mean of the others
    assert b["predictedRating"][j] == pytest.approx(np.mean([4.5, 3.2, 4.9, 4.1, 3.9]))
    assert "Echo Action (2005)" in c["item_text"][j] and "Genres: Action, Thriller" in c["item_text"][j]
    # the user's other answers: u1 (m1 1, m2 0, m3 1; m99 has no movie), u2 (m2 1, m4 0, m5 0)
    share = {("u1", "1"): 0.5, ("u1", "2"): 1.0, ("u1", "3"): 0.5, ("u2", "2"): 0.0, ("u2", "4"): 0.5, ("u2", "5"): 0.5}
    assert b[H.OTHER_ANSWERS] == pytest.approx([share[k] for k in key])
    for r in range(len(c)):  # a row's own label never moves its own score
        flipped = c.assign(label=c["label"].where(c.index != r, 1 - c["label"]))
        assert H.other_answers(flipped)[r] == b[H.OTHER_ANSWERS][r]
    alone = c.assign(user_id=np.where(c.index == i, "u3", c["user_id"]))  # u3 has no other row
    assert H.other_answers(alone)[i] == pytest.approx(3 / 5)  # the other rows' positive rate
    ex = H.human_examples(c, load_tokenizer(tiny_model_dir))
    assert (ex["source"] == "human").all() and ex["confidence"].min() >= H.HUMAN_CONFIDENCE_MIN > 0.8
    assert ex.loc[c["item_id"].eq("3") & c["user_id"].eq("u1"), "confidence"].item() == 1.0  # every flag
    folds = H.user_folds(c["user_id"], 2, seed=0)
    assert all(len(set(folds[c["user_id"] == u])) == 1 for u in c["user_id"].unique())


def _model_with_card(src: Path, dst: Path, card: dict | None) -> Path:
    shutil.copytree(src, dst)
    if card is not None:
        (dst / "model_card.json").write_text(json.dumps(card))
    return dst


def test_model_card_without_budget_is_refused(tmp_path, tiny_model_dir, capsys, small_dataset):
    from seren.serengpt.recipe import BASE_TOKEN_BUDGET, model_recipe, prompt_recipe

    bare = _model_with_card(tiny_model_dir, tmp_path / "nobudget", {"stage": "sft", "base_model": "x"})
    with pytest.raises(ConfigError) as err:
        model_recipe(bare)
    assert "records no prompt token budget" in err.value.line() and "\n" not in err.value.line()
    assert model_recipe(bare, token_budget=50)["token_budget"] == 50
    good = _model_with_card(tiny_model_dir, tmp_path / "good", {"prompt": prompt_recipe(72)})
    assert model_recipe(good)["token_budget"] == 72
    legacy = _model_with_card(tiny_model_dir, tmp_path / "legacy", {"source": {"token_budget": 40}})
    assert model_recipe(legacy)["token_budget"] == 40
    assert model_recipe(tiny_model_dir)["token_budget"] == BASE_TOKEN_BUDGET  # a base model: no card
    old = _model_with_card(tiny_model_dir, tmp_path / "v1", {"prompt": prompt_recipe(72) | {"format": "x/v1"}})
    with pytest.raises(ConfigError) as err:  # trained on another prompt: not scored with this one
        model_recipe(old, token_budget=50)
    assert "prompt format 'x/v1'" in err.value.line() and "\n" not in err.value.line()
    from seren.data.dataset import load_dataset

    ds = load_dataset(small_dataset)
    user, item = str(ds.interactions["user_id"].iloc[0]), str(ds.items["item_id"].iloc[0])
    code, out, err = run(
        capsys, "serengpt", "score", "--model", str(bare), "--user", user, "--items", item, "--data", str(small_dataset)
    )
    assert code == 2 and out == "" and err.count("\n") == 1 and "records no prompt token budget" in err


def test_score_against_a_chosen_history(capsys, tmp_path, tiny_model_dir, small_dataset):
    from seren.data.dataset import load_dataset
    from seren.serengpt.recipe import prompt_recipe

    model = _model_with_card(tiny_model_dir, tmp_path / "m", {"prompt": prompt_recipe(120)})
    ds = load_dataset(small_dataset)
    inter = ds.interactions
    user = inter["user_id"].value_counts().index[0]
    mine = inter[inter["user_id"] == user]
    cand = str(mine["item_id"].iloc[-1])
    base = [
        "serengpt",
        "score",
        "--model",
        str(model),
        "--user",
        user,
        "--items",
        cand,
        "--data",
        str(small_dataset),
        "--json",
    ]
    code, out, err = run(capsys, *base)
    assert code == 0, err
    code, out_ex, err = run(capsys, *base, "--exclude", "candidates")
    assert code == 0, err
    whole, excl = json.loads(out)["profile_text"], json.loads(out_ex)["profile_text"]
    assert whole.startswith(f"Activity: {len(mine)} events")
    assert excl.startswith(f"Activity: {int((mine['item_id'] != cand).sum())} events")  # the candidate left out
    hist = [str(i) for i in mine["item_id"].value_counts().index[-2:]]  # two rarely repeated items
    n_events = int(mine["item_id"].isin(hist).sum())
    code, out_h, err = run(capsys, *base, "--history", ",".join(hist))
    assert code == 0, err
    assert json.loads(out_h)["profile_text"].startswith(f"Activity: {n_events} events")
    assert n_events < len(mine)
    code, _, err = run(capsys, *base, "--history", "not-an-item")
    assert code == 2 and err.count("\n") == 1 and "no event for" in err


def test_evaluate_human_cli_writes_the_table_and_the_card(capsys, tmp_path, tiny_model_dir, fixture_dirs):
    from seren.serengpt.recipe import prompt_recipe
    from seren.serengpt.sft import read_model_card

    answers, ml = fixture_dirs
    model = _model_with_card(tiny_model_dir, tmp_path / "m", {"stage": "sft", "prompt": prompt_recipe(96)})
    out = tmp_path / "human"
    args = ["serengpt", "evaluate", "--human", str(answers.parent), "--movies", str(ml), "--model", str(model)]
    code, stdout, err = run(capsys, *args, "--out", str(out), "--n-boot", "20", "--json")
    assert code == 0, err
    res = json.loads(stdout)
    assert res["order"] == [*H.BASELINES, "SerenGPT"] and res["n_rows"] == 6 and res["n_users"] == 2
    assert res["recipes"]["SerenGPT"]["token_budget"] == 96
    assert "survey: 6 judgments of 2 users (1 rows without a movie dropped)" in err  # progress on stderr
    assert (out / "human_agreement.json").is_file() and (out / "human_agreement.md").is_file()
    card = read_model_card(model)
    assert card["human_agreement"]["n_rows"] == 6 and "roc_auc" in card["human_agreement"]
    assert "Human agreement" in (model / "README.md").read_text()
    code, _, err = run(
        capsys, "serengpt", "evaluate", "--human", str(tmp_path / "none"), "--movies", str(ml), "--model", str(model)
    )
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err


def test_train_adds_survey_judgments_as_human_labels(fixture_dirs, tiny_model_dir):
    from types import SimpleNamespace

    from seren.data.movielens import load_movielens
    from seren.profiles.text import load_tokenizer
    from seren.serengpt.labeling import PREF_COLUMNS, SFT_COLUMNS
    from seren.serengpt.train import add_survey_examples

    answers, ml = fixture_dirs
    td = SimpleNamespace(
        sft_train=pd.DataFrame(columns=SFT_COLUMNS), pref_train=pd.DataFrame(columns=PREF_COLUMNS), metrics={}
    )
    add_survey_examples(td, load_movielens(ml), load_tokenizer(tiny_model_dir), str(answers.parent), token_budget=64)
    # 6 judgments, 3 serendipitous: already balanced, every row kept once
    assert len(td.sft_train) == 6 and td.sft_train["label"].sum() == 3
    assert (td.sft_train["source"] == "human").all() and td.sft_train["confidence"].min() >= 0.85
    assert td.sft_train["completion"].isin(["Yes", "No"]).all() and len(td.pref_train) == 6
    assert td.metrics["human_judgments"] == 6 and td.metrics["human_without_movie"] == 1


def test_labeling_step_joins_survey_judgments(fixture_dirs, small_dataset, tiny_model_dir, tmp_path):
    """The pipeline's labeling step (label_data -> run_labeling) with a survey (`human_train_dir`,
    `seren serengpt train --human`): its judgments join the training tables as source "human"."""
    from seren.profiles.io import build_profiles_file
    from seren.serengpt.labeling import TrainingData, run_labeling

    answers, ml = fixture_dirs
    base, prof = str(tiny_model_dir), tmp_path / "profiles.parquet"
    build_profiles_file(small_dataset, prof, base, 64, None, 0.4, "none", None, 2, True)
    run_labeling(small_dataset, prof, tmp_path / "plain", base_model=base)
    metrics = run_labeling(
        small_dataset, prof, tmp_path / "td", base_model=base, survey=str(answers.parent), survey_movies=str(ml)
    )
    td, plain = TrainingData.load(tmp_path / "td"), TrainingData.load(tmp_path / "plain")
    assert metrics["human_judgments"] == 6 and metrics["train_source_human"] == 6
    # the synthetic data's ground-truth labels are "human" too: the survey adds exactly its 6 rows, 3 serendipitous
    human, before = (t.sft_train[t.sft_train["source"] == "human"] for t in (td, plain))
    assert len(human) == len(before) + 6 and human["label"].sum() == before["label"].sum() + 3
    assert len(td.sft_train) == len(plain.sft_train) + 6 and len(td.pref_train) == len(plain.pref_train) + 6
