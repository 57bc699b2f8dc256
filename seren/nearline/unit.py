"""A user's nearline unit: the cognition profile and the candidates scored from it, read together.

`run_nearline` writes them with two Feast pushes (two views); Feast has no transaction across
views. Both rows carry the run's window end as their event_timestamp, which marks the pair: a run
that dies between the two pushes leaves the new profile next to the previous candidates until the
re-run (the watermark did not move, so the next run pushes both again). A reader that needs both
reads them here and gets ``consistent=False`` for such a torn pair instead of mixing two runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

UNIT_COLUMNS = ["user_id", "profile_text", "candidate_item_ids", "candidate_scores", "profile_ts", "candidates_ts"]


def read_units(store: Any, user_ids: Sequence[str]) -> pd.DataFrame:
    """Per user (in order): profile text, cached candidates, both rows' event timestamps and
    ``consistent`` (both present and written by the same run: equal window ends)."""
    from feature_repo.store import get_online

    ids = [str(u) for u in user_ids]
    prof = get_online(store, "user_profile", ids)
    cand = get_online(store, "user_candidates", ids)
    out = pd.DataFrame(
        {
            "user_id": ids,
            "profile_text": prof["profile_text"].reset_index(drop=True),
            "candidate_item_ids": cand["candidate_item_ids"].reset_index(drop=True),
            "candidate_scores": cand["candidate_scores"].reset_index(drop=True),
            "profile_ts": prof["event_timestamp"].reset_index(drop=True),
            "candidates_ts": cand["event_timestamp"].reset_index(drop=True),
        }
    )
    present = (prof["status"] != "missing").to_numpy() & (cand["status"] != "missing").to_numpy()
    out["consistent"] = present & (out["profile_ts"] == out["candidates_ts"]).to_numpy()
    return out
