"""Packed scoring (one sequence per user) equals per-pair scoring; candidates never see each other."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seren.errors import SerenError
from seren.llm.packed import join_packs, pack_user, plan_packs, split_shared, to_arrays

PROFILE = "Static: 42 events, active weekly. Long-term: jazz records, vinyl, audio gear; short-term: hiking."
ITEMS = [
    "Blue Train (vinyl reissue)\nCategory: Music/Jazz",
    "A cookbook of sourdough breads with long fermentation schedules",
    "Noise-cancelling headphones",
    "A field guide to birds of the Pacific Northwest, illustrated",
    "Dune",
]


def test_packed_equals_per_pair_and_naive(tiny_scorer, mixed_pairs) -> None:
    profiles, items = mixed_pairs
    packed = tiny_scorer.score(profiles, items)  # the default mode
    pair = tiny_scorer.score(profiles, items, mode="pair")
    naive = tiny_scorer.naive_score(profiles, items)
    assert packed.shape == (len(items),)
    assert np.abs(packed - pair).max() <= 1e-5
    assert np.abs(packed - naive).max() <= 1e-5
    # Three users -> three packs; the lone user's pack holds one candidate.
    assert sorted(len(p.candidates) for p in tiny_scorer.pack(profiles, items)) == [1, 2, 3]


def test_changing_one_candidate_leaves_the_others(tiny_scorer) -> None:
    base = tiny_scorer.score_packed(PROFILE, ITEMS)
    changed = list(ITEMS)
    changed[2] = "A completely different, much longer candidate text about garden tools and seeds"
    other = tiny_scorer.score_packed(PROFILE, changed)
    assert len(tiny_scorer.pack(PROFILE, changed)) == 1  # all in one sequence
    keep = [0, 1, 3, 4]
    np.testing.assert_allclose(other[keep], base[keep], atol=1e-6)
    assert abs(float(other[2]) - float(base[2])) > 1e-4
    # Order inside the pack does not matter either: each candidate's positions restart.
    rev = tiny_scorer.score_packed(PROFILE, ITEMS[::-1])[::-1]
    np.testing.assert_allclose(rev, base, atol=1e-5)


def test_packs_split_at_max_length(tiny_scorer) -> None:
    whole = tiny_scorer.pack(PROFILE, ITEMS)[0]
    n_shared = whole.segment_ids.count(-1)
    limit = n_shared + 2 * max(len(t) for t in _tails(tiny_scorer)) + 1
    packs = tiny_scorer.pack(PROFILE, ITEMS, max_len=limit)
    assert len(packs) >= 2
    assert all(len(p.input_ids) <= limit for p in packs)
    assert sorted(c for p in packs for c in p.candidates) == list(range(len(ITEMS)))
    got = tiny_scorer.score_packed(PROFILE, ITEMS, max_len=limit)
    np.testing.assert_allclose(got, tiny_scorer.score(PROFILE, ITEMS, mode="pair"), atol=1e-5)


def _tails(scorer) -> list[list[int]]:
    rows = scorer._token_lists(scorer.prompts(PROFILE, ITEMS))
    return split_shared(rows)[1]


def test_several_packs_in_one_row_are_kept_apart(tiny_scorer) -> None:
    """join_packs (one row per user, for servers) gives the same scores as one pack per row."""
    rows = tiny_scorer._token_lists(tiny_scorer.prompts(PROFILE, ITEMS))
    shared, tails = split_shared(rows)
    packs = pack_user(shared, tails, max_len=len(shared) + 2 * max(len(t) for t in tails))
    assert len(packs) >= 2
    row = join_packs(packs)
    assert sorted(set(s for s in row.segment_ids if s < 0)) == list(range(-len(packs), 0))
    pad = int(tiny_scorer.tokenizer.pad_token_id)
    with torch.inference_mode():
        one = tiny_scorer.packed_head(*(torch.from_numpy(a) for a in to_arrays([row], pad, 16, 8)))[0]
    ref = tiny_scorer.score(PROFILE, ITEMS, mode="pair")
    np.testing.assert_allclose(one[: len(ITEMS)].numpy()[np.argsort(row.candidates)], ref, atol=1e-5)


def test_bad_input_is_one_line(tiny_scorer) -> None:
    with pytest.raises(SerenError, match="empty candidate list") as e:
        tiny_scorer.score_packed(PROFILE, [])
    assert "\n" not in str(e.value)
    with pytest.raises(SerenError, match="over the pack limit of 40") as e:
        tiny_scorer.score_packed(PROFILE, ITEMS, max_len=40)
    assert "\n" not in str(e.value) and "Fix:" in str(e.value)
    with pytest.raises(SerenError, match="unknown scoring mode"):
        tiny_scorer.score(PROFILE, ITEMS, mode="fast")


def test_plan_packs_is_greedy_in_order() -> None:
    assert plan_packs(10, [3, 3, 3, 5], max_len=17) == [[0, 1], [2], [3]]
    assert plan_packs(10, [3, 3, 3, 5], max_len=100) == [[0, 1, 2, 3]]
    with pytest.raises(SerenError, match="candidate #1 needs 16 tokens"):
        plan_packs(10, [3, 6], max_len=15)


@pytest.mark.slow
def test_packed_equals_per_pair_smollm2() -> None:
    from seren.llm.scorer import SerenScorer

    scorer = SerenScorer.from_pretrained("smollm2")
    packed = scorer.score_packed(PROFILE, ITEMS[:3])
    pair = scorer.score(PROFILE, ITEMS[:3], mode="pair")
    assert np.abs(packed - pair).max() <= 1e-4
