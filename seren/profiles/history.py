"""Profiles built from a chosen part of a user's history.

`build_profiles` cuts a history by time only. Judging a candidate the user already engaged with
(a survey answer, a held-out rating) needs a profile that never saw that item: these helpers
build profiles from an explicit set of the user's events, or from everything except some items,
and one profile per judged (user, item) pair for leave-one-out evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from seren.data.dataset import Dataset
from seren.errors import DataError
from seren.profiles.build import ProfileConfig, build_profiles

PAIR_SEP = "\x1f"  # joins user and item into one pseudo-user id (never in MovieLens/synthetic ids)


def select_history(
    ds: Dataset,
    user: str,
    history: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The user's events restricted to the items in `history` (when given), minus `exclude`."""
    ev = ds.interactions[ds.interactions["user_id"].astype(str) == str(user)]
    if history is not None:
        keep = {str(i) for i in history}
        unknown = sorted(keep - set(ev["item_id"].astype(str)))
        if unknown:
            raise DataError(
                f"{len(unknown)} history item(s) the user {user!r} has no event for (e.g. {', '.join(map(repr, unknown[:3]))})",
                "pass item ids from the user's own history",
            )
        ev = ev[ev["item_id"].astype(str).isin(keep)]
    if exclude is not None:
        ev = ev[~ev["item_id"].astype(str).isin({str(i) for i in exclude})]
    return ev


def profile_for_history(
    ds: Dataset,
    tokenizer: Any,
    user: str,
    history: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    token_budget: int = 160,
    config: ProfileConfig | None = None,
) -> pd.DataFrame:
    """One profile row for `user` built only from the chosen events (cold-start when none are left)."""
    ev = select_history(ds, user, history, exclude)
    sub = Dataset(
        interactions=ev if len(ev) else ds.interactions.iloc[:0],
        items=ds.items,
        users=pd.DataFrame({"user_id": [str(user)]}),
    )
    if len(ev) == 0:
        return _cold_safe(sub, tokenizer, [str(user)], token_budget, config)
    return build_profiles(sub, tokenizer, users=[str(user)], token_budget=token_budget, config=config)


def _cold_safe(ds: Dataset, tokenizer: Any, users: list[str], token_budget: int, config: ProfileConfig | None) -> Any:
    """build_profiles needs at least one event; give an empty history one far-away dummy user."""
    if len(ds.interactions):
        return build_profiles(ds, tokenizer, users=users, token_budget=token_budget, config=config)
    item = str(ds.items["item_id"].iloc[0])
    dummy = pd.DataFrame(
        {
            "user_id": ["\x1edummy"],
            "item_id": [item],
            "event": ["click"],
            "rating": [float("nan")],
            "timestamp": [pd.Timestamp("1970-01-01", tz="UTC")],
        }
    )
    ds2 = Dataset(interactions=dummy, items=ds.items, users=ds.users)
    return build_profiles(ds2, tokenizer, users=users, token_budget=token_budget, config=config)


def leave_one_out_profiles(
    ds: Dataset,
    tokenizer: Any,
    pairs: pd.DataFrame,
    token_budget: int = 160,
    config: ProfileConfig | None = None,
) -> pd.DataFrame:
    """One profile per judged (user_id, item_id) pair from the user's *other* events.

    Built in one vectorised `build_profiles` call over pseudo-users (user + judged item), so a
    thousand judgments cost one profile build. Returns pairs' rows in order with profile_text,
    profile_tokens and `history_items` (the item ids the profile was built from).
    """
    if not {"user_id", "item_id"} <= set(pairs.columns):
        raise DataError("pairs lack user_id/item_id columns", "pass a frame of (user_id, item_id) judgments")
    p = pairs[["user_id", "item_id"]].astype(str).reset_index(drop=True)
    p["pid"] = p["user_id"] + PAIR_SEP + p["item_id"]
    inter = ds.interactions.assign(user_id=ds.interactions["user_id"].astype(str))
    ev = p.merge(inter, on="user_id", suffixes=("_judged", ""))
    ev = ev[ev["item_id"] != ev["item_id_judged"]]
    hist = ev.groupby("pid")["item_id"].agg(list)
    sub = Dataset(
        interactions=ev.drop(columns=["user_id", "item_id_judged"]).rename(columns={"pid": "user_id"}),
        items=ds.items,
        users=pd.DataFrame({"user_id": p["pid"].unique()}),
    )
    prof = _cold_safe(sub, tokenizer, p["pid"].unique().tolist(), token_budget, config)
    prof = prof.set_index("user_id")
    out = p.copy()
    out["profile_text"] = out["pid"].map(prof["profile_text"]).to_numpy()
    out["profile_tokens"] = out["pid"].map(prof["profile_tokens"]).to_numpy()
    out["history_items"] = [hist.get(k, []) for k in out["pid"]]
    out.attrs["metrics"] = prof.attrs.get("metrics", {})
    return out.drop(columns=["pid"])
