"""Per-user labeling cutoffs on a MovieLens-like hand-made log: four users, each active in their own
short period. Global cutoffs label one user; per-user cutoffs label every user's last events, each
after that user's own profile cutoff, end to end through the calls the profiles and labeling
components make, and the serengpt_training pipeline passes its `per_user_cutoffs` parameter on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from seren.data import Dataset, save_dataset
from seren.profiles import build_profile_snapshots, build_profiles, labeling_cutoffs
from seren.profiles.io import build_profiles_file
from seren.serengpt.labeling import build_labels, run_labeling
from seren.serengpt.labeling.training import TrainingData

T0 = pd.Timestamp("2024-01-01", tz="UTC")
USERS = ["u1", "u2", "u3", "u4"]


def staggered() -> Dataset:
    """User k (0..3) rates 10 items on days 100k .. 100k+9, all 4.5 stars: eight Books/Poetry items
    p<k>_0..7 (days +0..+7), then two Music/Jazz items j<k>_0..1 (days +8, +9)."""
    items, rows = [], []
    for k, user in enumerate(USERS):
        ids = [f"p{k}_{i}" for i in range(8)] + [f"j{k}_{i}" for i in range(2)]
        for i, item in enumerate(ids):
            jazz = item.startswith("j")
            items.append(
                {
                    "item_id": item,
                    "title": f"{'Record' if jazz else 'Poems'} {k}-{i}",
                    "text": "jazz record" if jazz else "poetry book",
                    "category": "Music/Jazz" if jazz else "Books/Poetry",
                    "price": 10.0,
                }
            )
            rows.append((user, item, "rating", 4.5, T0 + pd.Timedelta(days=100 * k + i)))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "event", "rating", "timestamp"])
    return Dataset(interactions=inter, items=pd.DataFrame(items), users=pd.DataFrame({"user_id": USERS})).validate()


def own_cut(k: int) -> pd.Timestamp:
    # quantile 1 - 0.4 of 10 event times, "higher": the 7th event (day +6) of user k
    return T0 + pd.Timedelta(days=100 * k + 6)


def test_global_cutoffs_label_only_the_user_active_at_the_cut(tok) -> None:
    ds = staggered()
    (cut,) = labeling_cutoffs(ds.interactions, 0.4, snapshots=1)
    assert cut == T0 + pd.Timedelta(days=203)  # event 23 of 40 (nearest): u3's fourth
    lab = build_labels(ds, build_profiles(ds, tok, as_of=cut))
    # u1, u2 ended before the cut, u4 has no history before it: only u3's days 203..209 are labeled
    assert sorted(zip(lab["item_id"], lab["label"], strict=True)) == [
        ("j2_0", 1),
        ("j2_1", 1),
        *[(f"p2_{i}", 0) for i in range(3, 8)],
    ]
    assert set(lab["user_id"]) == {"u3"}


def test_per_user_cutoffs_label_every_user_after_its_own_cutoff(tok) -> None:
    ds = staggered()
    (cuts,) = labeling_cutoffs(ds.interactions, 0.4, snapshots=1, per_user=True)
    assert cuts.to_dict() == {u: own_cut(k) for k, u in enumerate(USERS)}
    prof = build_profile_snapshots(ds, tok, [cuts])
    assert prof.set_index("user_id")["n_events"].to_dict() == dict.fromkeys(USERS, 6)  # days +0..+5 only
    lab = build_labels(ds, prof)
    got = {(r.user_id, r.item_id): (r.label, r.as_of) for r in lab.itertuples()}
    # each user's days +6..+9: two more Poetry items (inside the profile: expected, 0) and two Jazz
    # items (positive outside it: serendipitous, 1), judged against that user's own snapshot
    assert got == {
        (u, item): (int(item.startswith("j")), own_cut(k))
        for k, u in enumerate(USERS)
        for item in (f"p{k}_6", f"p{k}_7", f"j{k}_0", f"j{k}_1")
    }


def test_component_calls_with_per_user_cutoffs(tmp_path: Path, tiny_model_dir: Path) -> None:
    """build_profiles_file (profiles component) -> run_labeling (labeling component): every user
    labeled, the split and the ranking candidates disjoint by user."""
    data = save_dataset(staggered(), tmp_path / "data")
    prof_path = tmp_path / "profiles.parquet"
    build_profiles_file(data, prof_path, str(tiny_model_dir), 64, None, 0.4, "none", None, 1, True)
    m = run_labeling(data, prof_path, tmp_path / "td", base_model=str(tiny_model_dir), test_frac=0.25, seed=0)
    td = TrainingData.load(tmp_path / "td")
    assert (m["n_labels"], m["n_positive"]) == (16, 8)
    assert (m["n_train_users"], m["n_test_users"], m["n_eval_users"]) == (3, 1, 1)
    assert m["n_train"] == 12 and m["n_eval_candidates"] == 4  # 3 x (2 + 2), balanced; 2 + 2 held out
    train, test = set(td.sft_train["user_id"]), set(td.sft_test["user_id"])
    assert not train & test and train | test == set(USERS)
    assert set(td.eval_candidates["user_id"]) == test
    as_of = pd.to_datetime(td.labels["as_of"], utc=True)
    assert (as_of == td.labels["user_id"].map({u: own_cut(k) for k, u in enumerate(USERS)})).all()


def test_pipeline_passes_per_user_cutoffs_to_the_profiles_step() -> None:
    from pipelines import framework
    from pipelines.serengpt_training.pipeline import pipeline

    assert pipeline.component_spec.inputs["per_user_cutoffs"].default is True
    spec = framework.load_spec(framework.golden_path("serengpt_training"))[0]
    task = spec["root"]["dag"]["tasks"]["cognition-profiles"]["inputs"]["parameters"]
    assert task["per_user"] == {"componentInputParameter": "per_user_cutoffs"}
    root = spec["root"]["inputDefinitions"]["parameters"]["per_user_cutoffs"]
    assert root["defaultValue"] is True and root["parameterType"] == "BOOLEAN"


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
