"""SFT + preference alignment on the tiny model: things that could fail, on fixed seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from seren.errors import ConfigError, DataError, SerenError
from seren.llm.scorer import SerenScorer
from seren.serengpt.align import preference_margins, train_preference
from seren.serengpt.sft import read_model_card, train_sft


def _scores(model_dir: Path, df: pd.DataFrame) -> np.ndarray:
    return SerenScorer.from_pretrained(model_dir).score(df["profile_text"].tolist(), df["item_text"].tolist())


def _separation(p: np.ndarray, labels: pd.Series) -> float:
    y = labels.to_numpy() == 1
    return float(p[y].mean() - p[~y].mean())


def test_sft_loss_decreases(trained):
    tm = read_model_card(trained["sft"])["train_metrics"]
    assert tm["steps"] == 64
    assert tm["loss_last_quarter"] < tm["loss_first_quarter"] - 0.1, tm["loss_curve"]


def test_sft_moves_p_yes_towards_labels(trained, toy):
    base, sft = _scores(trained["base"], toy), _scores(trained["sft"], toy)
    assert roc_auc_score(toy["label"], sft) >= 0.8
    assert _separation(sft, toy["label"]) > _separation(base, toy["label"]) + 0.005


def test_ipo_raises_the_chosen_margin_and_separation(trained, toy):
    from seren.llm.base import load_causal_lm

    m_sft = preference_margins(*load_causal_lm(trained["sft"]), toy)
    m_ipo = preference_margins(*load_causal_lm(trained["ipo"]), toy)
    assert m_ipo.mean() > m_sft.mean() + 0.1
    assert (m_ipo > m_sft).mean() > 0.9  # nearly every pair moved the preferred way
    sft, ipo = _scores(trained["sft"], toy), _scores(trained["ipo"], toy)
    assert _separation(ipo, toy["label"]) > _separation(sft, toy["label"])
    pm = read_model_card(trained["ipo"])["train_metrics"]["preference"]
    assert pm["rewards_margins_last_quarter"] > pm["rewards_margins_first_quarter"]


@pytest.mark.parametrize("stage", ["sft", "ipo"])
def test_merged_dir_is_a_plain_causal_lm_with_a_card(trained, toy, stage):
    from transformers import AutoModelForCausalLM

    d = trained[stage]
    names = {p.name for p in d.iterdir()}
    assert not any(n.startswith("adapter_") for n in names), names
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "model_card.json"} <= names
    model = AutoModelForCausalLM.from_pretrained(str(d))
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not any("lora" in n for n, _ in model.named_parameters())
    card = json.loads((d / "model_card.json").read_text())
    assert card["base_model"] == str(trained["base"])
    readme = (d / "README.md").read_text()
    assert "## Hyperparameters" in readme and "base model" in readme
    if stage == "ipo":
        assert card["stage"] == "sft+ipo"
        assert card["hyperparameters"]["preference"]["trl_loss_type"] == "ipo"
        assert card["data"]["preference"]["n_pairs"] == len(toy)
        assert card["parent_model"] == str(trained["sft"])
    else:
        assert card["data"]["n_train"] == len(toy) and card["hyperparameters"]["lora_r"] == 8


class Boom(Exception):
    pass


def _crash_after(step: int):
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step >= step:
                raise Boom(f"simulated crash after checkpoint {step}")

    return Crash()


class _StepCounter:
    def __new__(cls):
        from transformers import TrainerCallback

        class Counter(TrainerCallback):
            n = 0

            def on_step_end(self, args, state, control, **kw):
                self.n += 1

        return Counter()


def test_sft_resumes_from_its_checkpoint_and_skips_when_done(tiny_model_dir, toy, tmp_path):
    kw = {"max_steps": 3, "batch_size": 4, "learning_rate": 1e-2, "save_steps": 1, "progress": False}
    with pytest.raises(Boom):
        train_sft(tiny_model_dir, toy, tmp_path, callbacks=[_crash_after(2)], **kw)
    assert not (tmp_path / "model").exists()  # no partial model
    assert (tmp_path / "checkpoints" / "checkpoint-2").is_dir()
    steps = _StepCounter()
    out = train_sft(tiny_model_dir, toy, tmp_path, callbacks=[steps], **kw)
    tm = read_model_card(out)["train_metrics"]
    assert tm["resumed_from"] == "checkpoint-2" and tm["steps"] == 3
    assert steps.n == 1  # only step 3 ran again
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert train_sft(tiny_model_dir, toy, tmp_path, **kw) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp  # finished: not retrained
    # other settings: starts over (stale checkpoints dropped) and replaces the model when done
    out2 = train_sft(tiny_model_dir, toy, tmp_path, **{**kw, "learning_rate": 5e-3})
    assert read_model_card(out2)["train_metrics"]["resumed_from"] is None
    assert read_model_card(out2)["hyperparameters"]["learning_rate"] == 5e-3


def test_dpo_is_selectable(trained, toy, tmp_path):
    out = train_preference(trained["sft"], toy, tmp_path, loss="dpo", max_steps=2, batch_size=4, progress=False)
    card = read_model_card(out)
    assert card["stage"] == "sft+dpo"
    assert card["hyperparameters"]["preference"]["trl_loss_type"] == "sigmoid"


def test_max_examples_keeps_classes_balanced(trained, toy, tmp_path):
    from seren.serengpt.sft import balanced_sample

    skewed = pd.concat([toy[toy["label"] == 1], toy[toy["label"] == 0].head(6)])
    s = balanced_sample(skewed, 10, seed=0)
    assert len(s) == 10 and s["label"].sum() == 5
    s = balanced_sample(skewed, 20, seed=0)  # not enough negatives: fill with positives
    assert len(s) == 20 and (s["label"] == 0).sum() == 6


def test_bad_inputs_are_one_line_errors_without_artifacts(tiny_model_dir, toy, tmp_path):
    not_lm = tmp_path / "bert"
    not_lm.mkdir()
    (not_lm / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert"}))
    cases = [
        (DataError, "SFT training set is empty", lambda: train_sft(tiny_model_dir, toy.iloc[:0], tmp_path / "a")),
        (DataError, "lacks column", lambda: train_sft(tiny_model_dir, toy.drop(columns=["completion"]), tmp_path / "b")),
        (DataError, "preference set is empty", lambda: train_preference(tiny_model_dir, toy.iloc[:0], tmp_path / "c")),
        (ConfigError, "unknown preference loss", lambda: train_preference(tiny_model_dir, toy, tmp_path / "d", loss="ppo")),
        (DataError, "max_steps", lambda: train_sft(tiny_model_dir, toy, tmp_path / "e", max_steps=0)),
        (SerenError, "not a causal language model", lambda: train_sft(not_lm, toy, tmp_path / "f")),
        (SerenError, "does not exist", lambda: train_sft(tmp_path / "missing", toy, tmp_path / "g")),
    ]  # fmt: skip
    for exc, match, call in cases:
        with pytest.raises(exc, match=match) as err:
            call()
        line = err.value.line()  # what the CLI prints: one line naming the problem and the fix
        assert "\n" not in line and match in line and "Fix: " in line, line
    for d in "abcdefg":
        assert not (tmp_path / d).exists() or not any((tmp_path / d).iterdir()), d


def test_lora_layers_adapts_only_the_top_blocks(tiny_model_dir, toy, tmp_path):
    """peft refuses a layer subset with target "all-linear": the top-N option names the block linears."""
    from peft import get_peft_model

    from seren.llm.base import load_causal_lm
    from seren.serengpt.sft import lora_config

    model, _ = load_causal_lm(tiny_model_dir)
    peft_model = get_peft_model(model, lora_config(4, 8, model, top_layers=1))
    adapted = {n.split(".layers.")[1].split(".")[0] for n, _ in peft_model.named_parameters() if "lora_" in n}
    assert adapted == {"1"}  # 2 blocks: only the top one
    assert sum("lora_" in n for n, _ in peft_model.named_parameters()) == 2 * 7  # A+B on q,k,v,o,gate,up,down
    out = train_sft(
        tiny_model_dir, toy, tmp_path, max_steps=2, batch_size=4, learning_rate=1e-2, progress=False, lora_layers=1
    )
    card = read_model_card(out)
    assert card["hyperparameters"]["lora_layers"] == 1 and card["train_metrics"]["steps"] == 2
    assert card["hyperparameters"]["lora_target"] == "all-linear in the top 1 blocks"
