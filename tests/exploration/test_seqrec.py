"""SASRec-style sequence recommender: quality vs popularity on seeded synthetic data, masking
(restriction, exclude-seen), fallbacks, padding/causality invariants, persistence, early stopping
and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from seren.data import load_dataset
from seren.data.synthetic import SyntheticConfig, generate
from seren.errors import ConfigError, DataError
from seren.exploration.seqrec import (
    CHECKPOINT_FILE,
    MODEL_FILE,
    SASRec,
    SeqRecModel,
    _val_hr,
    evaluate_seqrec,
    novel_cluster_items,
    split_sequences,
    train_seqrec,
    user_histories,
)

# a catalogue large enough that ~90 users have a *new* next item in the test split (the generator
# repeats favourites a lot); a small fast model that still learns the users' interests
DATA = SyntheticConfig(n_users=200, n_items=400, events_per_user=40, seed=3)
FAST = dict(dim=32, n_blocks=1, max_len=30, lr=5e-3, batch_size=32, epochs=15, patience=3, seed=0)
TINY = dict(dim=16, n_blocks=1, max_len=20, lr=1e-2, batch_size=32, seed=0)


@pytest.fixture(scope="module")
def seq_ds() -> Any:
    return generate(DATA)


@pytest.fixture(scope="module")
def trained(seq_ds: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SeqRecModel]:
    out = tmp_path_factory.mktemp("seqrec") / "model"
    return out, train_seqrec(seq_ds, out, progress=False, **FAST)


@pytest.fixture(scope="module")
def histories(seq_ds: Any) -> dict[str, list[str]]:
    return user_histories(seq_ds)


def test_beats_popularity_on_synthetic(trained: tuple[Path, SeqRecModel], seq_ds: Any) -> None:
    _, model = trained
    m = evaluate_seqrec(model, seq_ds, k=10)
    assert m["n_users"] >= 60  # enough held-out users for the comparison to mean something
    assert m["hr_at_10"] >= m["pop_hr_at_10"] + 0.15, m
    assert m["ndcg_at_10"] > m["pop_ndcg_at_10"], m
    # restricted mode (categories stand in for clusters): only allowed items, all from new clusters
    assert m["restricted_n_users"] >= 150
    assert m["restricted_allowed_share"] == 1.0
    assert m["restricted_new_cluster_share_at_10"] == 1.0
    assert m["unrestricted_new_cluster_share_at_10"] < 0.9  # the unrestricted model mostly exploits
    assert m["novel_n_users"] > 0 and 0.0 <= m["novel_next_hr_at_10"] <= m["novel_any_hr_at_10"] <= 1.0
    assert m["unknown_history_items"] >= 0 and m["popularity_fallbacks"] == 0


def test_restriction_returns_only_allowed(trained: tuple[Path, SeqRecModel], histories: dict[str, list[str]]) -> None:
    _, model = trained
    users = sorted(histories)[:20]
    rng = np.random.default_rng(0)
    allowed = [set(rng.choice(model.item_ids, size=15, replace=False)) | {"not-an-item"} for _ in users]
    recs = model.recommend_batch([histories[u] for u in users], k=10, allowed_item_ids=allowed)
    raw = model.score_histories([histories[u] for u in users])
    for u, a, r, s in zip(users, allowed, recs, raw, strict=True):
        ids = [i for i, _ in r]
        reachable = (a & set(model.item_ids)) - set(histories[u])
        assert set(ids) <= reachable and len(ids) == min(10, len(reachable))
        scores = [x for _, x in r]
        assert scores == sorted(scores, reverse=True)
        assert scores == pytest.approx([float(s[model.index[i]]) for i in ids])  # masking never rescales
        # the restricted list is the unrestricted ranking filtered to the allowed items
        full = [i for i, _ in model.recommend(histories[u], k=model.n_items)]
        assert ids == [i for i in full if i in a][:10]
    assert model.recommend(histories[users[0]], allowed_item_ids=set()) == []
    assert model.recommend(histories[users[0]], allowed_item_ids={"not-an-item"}) == []
    shared = set(model.item_ids[:40])
    for r in model.recommend_batch([histories[u] for u in users[:3]], k=5, allowed_item_ids=shared):
        assert {i for i, _ in r} <= shared


def test_exclude_seen(trained: tuple[Path, SeqRecModel], histories: dict[str, list[str]]) -> None:
    _, model = trained
    u = max(histories, key=lambda x: len(set(histories[x])))
    h = histories[u]
    raw = model.score_histories([h])[0].numpy()
    order = [model.item_ids[i] for i in np.argsort(-raw, kind="stable")]
    keep = model.recommend(h, k=10, exclude_seen=True)
    assert not {i for i, _ in keep} & set(h)
    assert [i for i, _ in keep] == [i for i in order if i not in set(h)][:10]
    every = model.recommend(h, k=model.n_items, exclude_seen=False)
    assert [i for i, _ in every] == order
    # this user's favourites are repeats: without exclusion the top 10 contains seen items
    assert {i for i, _ in every[:10]} & set(h)


def test_unknown_items_ignored_and_empty_history_falls_back(
    trained: tuple[Path, SeqRecModel], histories: dict[str, list[str]]
) -> None:
    _, model = trained
    h = histories[sorted(histories)[0]]
    before = dict(model.counters)
    noisy = ["ghost-1", *h[:3], "ghost-2", *h[3:]]
    assert model.recommend(noisy) == model.recommend(h)
    assert model.counters["unknown_history_items"] == before["unknown_history_items"] + 2
    pop = model.recommend([], k=5)
    assert model.counters["popularity_fallbacks"] == before["popularity_fallbacks"] + 1
    ranked = sorted(range(model.n_items), key=lambda i: (-float(model.popularity[i]), i))
    assert [i for i, _ in pop] == [model.item_ids[i] for i in ranked[:5]]
    assert [s for _, s in pop] == pytest.approx([float(model.popularity[i]) for i in ranked[:5]])
    assert model.recommend(["ghost-1", "ghost-2"], k=5) == pop  # nothing known: same fallback
    allowed = set(model.item_ids[-30:])
    assert {i for i, _ in model.recommend([], k=5, allowed_item_ids=allowed)} <= allowed


def test_batch_equals_single_and_padding_is_inert(
    trained: tuple[Path, SeqRecModel], histories: dict[str, list[str]]
) -> None:
    _, model = trained
    users = sorted(histories, key=lambda u: len(histories[u]))
    picked = [users[0], users[len(users) // 2], users[-1]]  # short, medium, long (> max_len) histories
    hs = [histories[u] for u in picked] + [histories[picked[0]][:1]]
    batch = model.recommend_batch(hs, k=10, batch_size=3)
    for h, r in zip(hs, batch, strict=True):
        single = model.recommend(h, k=10)
        assert [i for i, _ in r] == [i for i, _ in single]
        assert [s for _, s in r] == pytest.approx([s for _, s in single], abs=1e-4)


def test_attention_is_causal_and_ignores_padding() -> None:
    torch.manual_seed(0)
    net = SASRec(n_items=30, max_len=8, dim=16, n_blocks=2, n_heads=2, dropout=0.0).eval()
    seq = torch.tensor([[0, 0, 3, 5, 7, 9, 11, 2]])
    changed = seq.clone()
    changed[0, -1] = 29
    with torch.no_grad():
        a, b = net.encode(seq), net.encode(changed)
        assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-6)  # earlier positions never see later items
        assert not torch.allclose(a[:, -1], b[:, -1])
        assert torch.allclose(net.last_scores(seq), net.last_scores(seq[:, 2:]), atol=1e-5)  # padding inert
        assert torch.isfinite(a).all()  # padded rows do not produce NaN


def test_save_load_round_trip(
    trained: tuple[Path, SeqRecModel], histories: dict[str, list[str]], tmp_path: Path
) -> None:
    out, model = trained
    assert (out / MODEL_FILE).is_file() and (out / CHECKPOINT_FILE).is_file() and (out / "config.json").is_file()
    loaded = SeqRecModel.load(out)
    hs = [histories[u] for u in sorted(histories)[:25]] + [[]]
    assert loaded.item_ids == model.item_ids and loaded.config == model.config
    assert torch.equal(loaded.score_histories(hs), model.score_histories(hs))
    assert loaded.recommend_batch(hs, k=10) == model.recommend_batch(hs, k=10)
    with pytest.raises(DataError, match="no sequence recommender"):
        SeqRecModel.load(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / MODEL_FILE).write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="cannot read the model"):
        SeqRecModel.load(bad)


def test_early_stopping_stops_and_keeps_best(small_dataset: Path, tmp_path: Path) -> None:
    ds = load_dataset(small_dataset)
    seen: list[dict] = []
    model = train_seqrec(ds, tmp_path / "m", epochs=40, patience=2, progress=False, on_epoch=seen.append, **TINY)
    info = model.info
    assert info["stop_reason"] == "early_stopping"
    assert info["epochs_run"] == len(seen) == info["best_epoch"] + 2 < 40
    best = max(h["val_hr_at_10"] for h in seen)
    assert info["best_val_hr"] == pytest.approx(best, abs=1e-5)
    assert [h["val_hr_at_10"] for h in seen].index(best) + 1 == info["best_epoch"]  # first epoch reaching it
    # the saved model is the best epoch's, not the last one's
    split = split_sequences(ds, model.config.val_frac, model.config.test_frac)
    hr = _val_hr(SeqRecModel.load(tmp_path / "m"), split, 10, sorted(split.val))
    assert hr == pytest.approx(best, abs=1e-5)


def test_resume_matches_uninterrupted_run(small_dataset: Path, tmp_path: Path) -> None:
    ds = load_dataset(small_dataset)
    kw = dict(patience=50, progress=False, **TINY)
    train_seqrec(ds, tmp_path / "a", epochs=2, **kw)
    calls: list[dict] = []
    resumed = train_seqrec(ds, tmp_path / "a", epochs=4, on_epoch=calls.append, **kw)
    assert [c["epoch"] for c in calls] == [3, 4]  # continued, did not restart
    straight = train_seqrec(ds, tmp_path / "b", epochs=4, **kw)
    assert resumed.info["history"] == straight.info["history"]
    hs = list(user_histories(ds).values())[:10]
    assert torch.equal(resumed.score_histories(hs), straight.score_histories(hs))
    again: list[dict] = []
    train_seqrec(ds, tmp_path / "a", epochs=4, on_epoch=again.append, **kw)
    assert again == []  # finished run: returned from the checkpoint
    changed: list[dict] = []
    train_seqrec(ds, tmp_path / "a", epochs=1, on_epoch=changed.append, **{**kw, "dim": 8})
    assert len(changed) == 1  # other settings: started over instead of mixing models


def test_bce_loss_trains(small_dataset: Path, tmp_path: Path) -> None:
    seen: list[dict] = []
    train_seqrec(
        load_dataset(small_dataset),
        tmp_path / "m",
        epochs=3,
        patience=9,
        loss="bce",
        progress=False,
        on_epoch=seen.append,
        **TINY,
    )
    losses = [h["loss"] for h in seen]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_novel_cluster_items() -> None:
    i2c = {"a": "x", "b": "x", "c": "y", "d": "z"}
    assert novel_cluster_items({"u": ["a"], "v": ["a", "c", "d"], "w": []}, i2c) == {
        "u": {"c", "d"},
        "v": set(),
        "w": {"a", "b", "c", "d"},
    }


def test_bad_input(small_dataset: Path, tmp_path: Path, trained: tuple[Path, SeqRecModel]) -> None:
    ds = load_dataset(small_dataset)
    skips = ds.interactions.assign(event="skip", rating=np.nan)
    with pytest.raises(DataError, match="positively engaged"):
        train_seqrec(skips, tmp_path / "m", epochs=1)
    with pytest.raises(DataError, match="missing column 'timestamp'"):
        train_seqrec(ds.interactions.drop(columns=["timestamp"]), tmp_path / "m", epochs=1)
    one_each = ds.interactions.drop_duplicates("user_id")
    with pytest.raises(DataError):
        train_seqrec(one_each, tmp_path / "m", epochs=1)
    with pytest.raises(ConfigError, match="multiple of n_heads"):
        train_seqrec(ds, tmp_path / "m", dim=30, n_heads=4)
    with pytest.raises(ConfigError, match="loss must be one of"):
        train_seqrec(ds, tmp_path / "m", loss="hinge")
    with pytest.raises(ConfigError, match="not available"):
        train_seqrec(ds, tmp_path / "m", device="cuda:7" if not torch.cuda.is_available() else "tpu")
    assert not (tmp_path / "m").exists()  # nothing written for bad input
    _, model = trained
    with pytest.raises(ConfigError, match="k must be"):
        model.recommend(["x"], k=0)
    with pytest.raises(ConfigError, match="one collection"):
        model.recommend_batch([["x"], ["y"]], allowed_item_ids=[{"a"}])
    empty = pd.DataFrame(columns=ds.interactions.columns)
    with pytest.raises(DataError):
        train_seqrec(empty, tmp_path / "m", epochs=1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")
def test_train_and_recommend_on_gpu(small_dataset: Path, tmp_path: Path) -> None:
    ds = load_dataset(small_dataset)
    gpu = train_seqrec(ds, tmp_path / "g", epochs=2, patience=5, device="cuda", progress=False, **TINY)
    cpu = SeqRecModel.load(tmp_path / "g")  # the saved model loads on the CPU
    hs = list(user_histories(ds).values())[:20]
    assert torch.allclose(gpu.score_histories(hs), cpu.score_histories(hs), atol=1e-4)
    assert [i for i, _ in gpu.recommend(hs[0])] == [i for i, _ in cpu.recommend(hs[0])]
