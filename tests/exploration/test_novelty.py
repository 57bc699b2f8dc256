"""Novelty LLM: trie-constrained outputs are always valid novel clusters, exact scoring, gates
and baselines computed, bad inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from seren.errors import ConfigError, DataError
from seren.exploration.novelty import (
    Baselines,
    DescriptionTrie,
    NoveltyModel,
    evaluate_novelty,
    linear_decay_lambda,
    paired_margin,
    recall_at,
    train_novelty,
)
from seren.exploration.pair_table import all_pairs


def test_trie_walks_only_valid_descriptions(novelty_model: NoveltyModel) -> None:
    trie = novelty_model.trie
    for idx, seq in enumerate(trie.sequences):
        for j in range(len(seq)):
            assert seq[j] in trie.allowed(seq[:j])
        assert trie.lookup(seq) == idx and trie.lookup(seq[:-1]) == idx
        assert trie.allowed(seq[:1], frozenset({idx})) == [] or all(
            trie._node(list(seq[:1]) + [t])["below"] - {idx} for t in trie.allowed(seq[:1], frozenset({idx}))
        )
    assert trie.allowed([10**6]) == [] and trie.lookup([10**6]) is None


def test_trie_rejects_descriptions_that_tokenize_alike(novelty_model: NoveltyModel) -> None:
    with pytest.raises(DataError, match="tokenize identically"):
        DescriptionTrie(novelty_model.tokenizer, ["jazz", "jazz"])


def test_every_constrained_answer_is_a_valid_novel_cluster(novelty_model: NoveltyModel) -> None:
    pairs = all_pairs(novelty_model.ids)[::3]  # 48 of the 144 pairs, some with c1 == c2
    valid = set(novelty_model.descriptions)
    answers = novelty_model.generate(pairs, constrained=True, batch_size=48)
    for pair, text in zip(pairs, answers, strict=True):
        assert text in valid, text
        assert novelty_model.by_description[text] not in pair
    some = pairs[::7]
    for method in ("score", "beam"):
        for pair, ranked in zip(some, novelty_model.top_novel(some, n=4, method=method), strict=True):
            ids = [c for c, _ in ranked]
            assert len(ids) == 4 == len(set(ids)) and not set(ids) & set(pair)
            assert all(c in novelty_model.index for c in ids)
            assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_exact_scores_match_a_full_forward_and_wide_beam(novelty_model: NoveltyModel) -> None:
    m, tok = novelty_model.model, novelty_model.tokenizer
    pair = (novelty_model.ids[0], novelty_model.ids[5])
    scores = novelty_model.score_pairs([pair])[0]
    prompt = tok(novelty_model.prompt(pair))["input_ids"]
    for j, seq in enumerate(novelty_model.trie.sequences):
        if novelty_model.ids[j] in pair:
            assert scores[j] == -np.inf
            continue
        with torch.no_grad():
            lp = torch.log_softmax(m(input_ids=torch.tensor([prompt + list(seq)])).logits[0].float(), -1)
        ref = sum(lp[len(prompt) - 1 + t, seq[t]].item() for t in range(len(seq)))
        assert scores[j] == pytest.approx(ref, abs=1e-3)
    n_all = len(novelty_model.ids)
    exact = novelty_model.top_novel([pair], n=3, method="score")[0]
    beam = novelty_model.top_novel([pair], n=3, method="beam", n_beams=n_all)[0]
    assert [c for c, _ in beam] == [c for c, _ in exact]
    assert [s for _, s in beam] == pytest.approx([s for _, s in exact], abs=1e-3)


def test_unconstrained_generation_is_free_text(novelty_model: NoveltyModel) -> None:
    out = novelty_model.generate(all_pairs(novelty_model.ids)[:4])
    assert len(out) == 4 and all(isinstance(t, str) for t in out)


def test_evaluate_reports_gates_and_baselines(novelty_model: NoveltyModel, small_transitions: Any) -> None:
    r = evaluate_novelty(novelty_model, small_transitions, n=3, ks=(1, 3))
    assert set(r["recall"]) == {"novelty_llm", "random_novel", "most_frequent_for_pair", "cooccurrence"}
    for row in r["recall"].values():
        assert 0.0 <= row["recall@1"] <= row["recall@3"] <= 1.0
    assert 0.0 <= r["exact_match_rate"] <= 1.0 and r["n_test"] == len(small_transitions.test)
    assert set(r["gates"]) == {"exact_match", "recall", "beats_baselines"}
    assert r["gates"]["recall"]["passed"] == (r["llm_recall"] >= 0.015)
    assert "| novelty_llm |" in r["table"] and "| cooccurrence |" in r["table"]
    beat = r["gates"]["beats_baselines"]
    lo, hi = beat["ci95"]
    assert lo <= beat["value"] <= hi and beat["significant"] == (lo > 0)
    assert beat["value"] == pytest.approx(r["llm_recall"] - r["recall"][beat["best_baseline"]]["recall@3"])


def test_paired_margin_separates_a_real_win_from_noise() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(400) < 0.3
    better = base | (rng.random(400) < 0.2)  # wins on ~14% more triples, never loses one
    real = paired_margin(better, base)
    assert real["n"] == 400 and real["ci95"][0] > 0 and real["value"] == pytest.approx(better.mean() - base.mean())
    noisy = paired_margin(rng.random(40) < 0.35, rng.random(40) < 0.3)
    assert noisy["ci95"][0] < 0 < noisy["ci95"][1]
    with pytest.raises(DataError, match="paired_margin"):
        paired_margin([True], [True, False])


def test_baselines_on_hand_built_history() -> None:
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    hist = pd.DataFrame(
        [("u1", "a", "b", "c", t0), ("u2", "a", "b", "c", t0), ("u3", "a", "b", "d", t0), ("u4", "b", "c", "e", t0)],
        columns=["user_id", "c1", "c2", "c_next", "timestamp"],
    )
    seqs = pd.DataFrame(
        [(u, c, t0) for u, cs in {"u1": "abc", "u2": "abe", "u3": "abd", "u4": "ce"}.items() for c in cs],
        columns=["user_id", "cluster_id", "timestamp"],
    )

    class T:
        history, cutoff = hist, t0 + pd.Timedelta(days=1)

    b = Baselines.fit(T(), seqs, list("abcdef"))  # type: ignore[arg-type]
    assert b.most_frequent([("a", "b")], 2) == [["c", "d"]]
    assert b.most_frequent([("e", "f")], 2) == [["c", "d"]]  # unseen pair: global most frequent next
    # co-occurrence with a and b: c (u1), d (u3), e (u2) once each -> ties in cluster order
    assert b.cooccurrence([("a", "b")], 3)[0][0] in {"c", "d", "e"}
    assert b.cooccurrence([("c", "e")], 1) == [["a"]] or b.cooccurrence([("c", "e")], 1) == [["b"]]
    r = b.random([("a", "b")] * 50, 2)
    assert all(len(set(x)) == 2 and not {"a", "b"} & set(x) for x in r)
    assert recall_at([["c", "d"], ["e"]], ["d", "c"], 1) == 0.0 and recall_at([["c", "d"], ["e"]], ["d", "c"], 2) == 0.5


def test_bad_inputs(novelty_model: NoveltyModel) -> None:
    with pytest.raises(DataError, match="unknown cluster 'nope'"):
        novelty_model.top_novel([("nope", novelty_model.ids[0])])
    with pytest.raises(ConfigError, match="unknown method"):
        novelty_model.top_novel([tuple(novelty_model.ids[:2])], method="magic")
    with pytest.raises(ConfigError, match="n must be >= 1"):
        novelty_model.top_novel([tuple(novelty_model.ids[:2])], n=0)
    with pytest.raises(DataError, match="at least 3 clusters"):
        NoveltyModel(novelty_model.model, novelty_model.tokenizer, {"a": "x", "b": "y"})
    with pytest.raises(DataError, match="no novelty_clusters.json"):
        NoveltyModel.from_pretrained(novelty_model_dir_without_clusters(novelty_model))


def test_training_decays_the_learning_rate(novelty_dir: Path, small_transitions: Any) -> None:
    import json

    state = json.loads(next((novelty_dir.parent / "checkpoints").glob("checkpoint-*/trainer_state.json")).read_text())
    lrs = [h["learning_rate"] for h in state["log_history"] if "learning_rate" in h]
    peak = max(lrs)
    assert lrs.index(peak) <= 2 and lrs[-1] < 0.2 * peak  # the fixture's 12 steps: warm-up, then down to ~0
    assert all(b <= a for a, b in zip(lrs[lrs.index(peak) :], lrs[lrs.index(peak) + 1 :], strict=False))
    f = linear_decay_lambda(warmup=10, total=100)
    assert f(9) == 1.0 and f(55) == pytest.approx(0.5) and f(100) == 0.0
    with pytest.raises(ConfigError, match="lr_schedule"):
        train_novelty(novelty_dir, small_transitions, {}, novelty_dir / "x", lr_schedule="cosine")


def novelty_model_dir_without_clusters(model: NoveltyModel) -> str:
    import tempfile

    d = tempfile.mkdtemp()
    model.model.save_pretrained(d)
    model.tokenizer.save_pretrained(d)
    return d
