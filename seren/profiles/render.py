"""Profile rendering: signals -> one text line per kind, the relation line's structured fields,
and trimming to the token budget by line priority (the lowest priority goes first)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from seren.data.dataset import Dataset
from seren.llm.relation import make_fields
from seren.profiles.text import count_tokens

# Line kinds: (display order, trim priority — lower is kept longer).
# The engaged-subcategory line comes first: whether an item is *outside* the history is exactly
# what a serendipity judgment needs.
LINES = {
    "activity": (0, 4),
    "top": (1, 1),
    "subcats": (2, 0),
    "stable": (3, 3),
    "recent": (4, 2),
    "summary": (4, 2),
    "keywords": (5, 5),
    "price": (6, 6),
    "genres": (2, 1.5),
    "titles": (5, 2.5),
    "cold": (0, 0),
}


def _fmt_list(v: Sequence[str]) -> str:
    return ", ".join(v)


def relation_fields(st: pd.DataFrame) -> list[str]:
    """Per user, the structured fields of the prompt's relation line (seren.llm.relation) as JSON:
    the listed engaged subcategories with their positives, how many more exist, the top categories
    with their shares. Built from the profile's columns, so a change of the prose template (or a
    line dropped by the token budget) cannot change the relation line."""
    out = []

    def lst(v: Any) -> list:
        return v if isinstance(v, list) else []

    for names, n_eng, more, tops, shares in zip(
        st["engaged_names"],
        st["engaged_n"],
        st["n_engaged_hidden"],
        st["top_categories"],
        st["top_shares"],
        strict=True,
    ):
        fields = make_fields(
            list(zip(lst(names), lst(n_eng), strict=True)),
            0 if pd.isna(more) else int(more),
            list(zip(lst(tops), lst(shares), strict=True)),
        )
        out.append(json.dumps(fields, sort_keys=True))
    return out


def _render_lines(st: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, line kind) with its text; empty lines are dropped."""
    days = st["recency_days"].round().astype(int).astype(str)
    parts: dict[str, pd.Series] = {}
    parts["activity"] = (
        "Activity: "
        + st["n_events"].astype(str)
        + " events ("
        + st["n_positive"].astype(str)
        + " positive, "
        + st["n_negative"].astype(str)
        + " negative) over "
        + st["active_days"].astype(str)
        + " days; last active "
        + days
        + " days ago."
    )
    top = [
        ", ".join(f"{c} {round(s * 100)}%" for c, s in zip(cs, ss, strict=True))
        for cs, ss in zip(st["top_categories"], st["top_shares"], strict=True)
    ]
    parts["top"] = pd.Series(
        [
            f"Top interests: {t} (entropy {h:.2f} bits; explores {e:.0%} outside)." if t else "Top interests: none yet."
            for t, h, e in zip(top, st["category_entropy"], st["exploration_rate"].fillna(0.0), strict=True)
        ],
        index=st.index,
    )
    parts["subcats"] = pd.Series(
        [
            f"Engaged subcategories: {_fmt_list(v)}{f' (+{int(k)} more)' if k else ''}; {r:.0%} of positives opened a new one."
            if v
            else ""
            for v, k, r in zip(st["engaged"], st["n_engaged_hidden"], st["novelty_rate"].fillna(0.0), strict=True)
        ],
        index=st.index,
    )
    stable = []
    for s, d, em, fa in zip(st["stable_interests"], st["drift"], st["emerging"], st["fading"], strict=True):
        if not s and not em:
            stable.append("")
            continue
        line = f"Long-term interests: {_fmt_list(s) or 'none stable'}"
        if not math.isnan(d):
            line += f"; drift {d:.2f}"
        if em:
            line += f"; emerging {_fmt_list(em)}"
        if fa:
            line += f"; fading {_fmt_list(fa)}"
        stable.append(line + ".")
    parts["stable"] = pd.Series(stable, index=st.index)
    parts["recent"] = st["recent_intent"].map(lambda v: f"Recent intent: {_fmt_list(v)}." if v else "")
    parts["keywords"] = st["recent_keywords"].map(lambda v: f"Recent keywords: {_fmt_list(v)}." if v else "")
    parts["price"] = pd.Series(
        [
            f"Price band: {b} (median {m:.2f})." if b else ""
            for b, m in zip(st["price_band"], st["price_median"], strict=True)
        ],
        index=st.index,
    )
    if "liked_genres" in st.columns:
        parts["genres"] = st["liked_genres"].map(lambda v: f"Liked genres: {_fmt_list(v)}." if v else "")
    if "liked_titles" in st.columns:
        parts["titles"] = st["liked_titles"].map(lambda v: f"Liked titles: {'; '.join(v)}." if v else "")
    frames = [pd.DataFrame({"user_id": st.index, "kind": k, "text": s.to_numpy()}) for k, s in parts.items()]
    lines = pd.concat(frames, ignore_index=True)
    return lines[lines["text"] != ""]


def _fit(lines: pd.DataFrame, tokenizer: Any, budget: int) -> tuple[pd.Series, pd.Series, int]:
    """Keep each user's highest-priority lines that fit `budget` tokens; never exceed it.

    Line costs are counted once per distinct line (+1 for the newline) to choose the lines; the
    joined text is then re-counted exactly and lines are dropped (or the last one cut) until it fits.
    """
    lines = lines.copy()
    lines["order"] = lines["kind"].map(lambda k: LINES[k][0])
    lines["prio"] = lines["kind"].map(lambda k: LINES[k][1])
    uniq = pd.unique(lines["text"])
    cost = pd.Series(count_tokens(tokenizer, uniq) + 1, index=uniq)
    lines["cost"] = lines["text"].map(cost).to_numpy()
    lines = lines.sort_values(["user_id", "prio"], kind="stable")
    lines["keep"] = lines.groupby("user_id", sort=False)["cost"].cumsum() <= budget + 1
    lines.loc[lines.groupby("user_id", sort=False).cumcount() == 0, "keep"] = True  # cut below if too long
    n_trimmed = int((~lines["keep"]).sum())

    kept = lines[lines["keep"]]

    def join(df: pd.DataFrame) -> pd.Series:
        return df.sort_values(["user_id", "order"], kind="stable").groupby("user_id", sort=True)["text"].agg("\n".join)

    text = join(kept)
    ntok = pd.Series(count_tokens(tokenizer, text.tolist()), index=text.index)
    while (over := ntok[ntok > budget]).size:
        k = kept[kept["user_id"].isin(over.index)]
        multi = k.groupby("user_id")["text"].transform("size") > 1
        # Drop the lowest-priority line of users that still have more than one line.
        drop = k[multi].sort_values(["user_id", "prio"], kind="stable").groupby("user_id").tail(1).index
        kept = kept.drop(drop)
        n_trimmed += len(drop)
        single = over.index.difference(k[multi]["user_id"].unique())
        fixed = join(kept[kept["user_id"].isin(over.index)])
        for u in single:  # a single line longer than the budget: cut it by tokens
            fixed[u] = _truncate(tokenizer, fixed[u], budget)
        text.update(fixed)
        ntok.update(pd.Series(count_tokens(tokenizer, fixed.tolist()), index=fixed.index))
    return text, ntok.astype(int), n_trimmed


def _truncate(tokenizer: Any, text: str, budget: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    n = min(len(ids), budget)
    while n > 0:
        cut = tokenizer.decode(ids[:n], skip_special_tokens=True).rstrip()
        if len(tokenizer(cut, add_special_tokens=False)["input_ids"]) <= budget:
            return cut
        n -= 1
    return ""


def _raw_tokens(ev: pd.DataFrame, ds: Dataset, tokenizer: Any) -> pd.Series:
    """Tokens of the naive prompt: one `event: title — text` line per event, summed per user.

    Counted per item and per event word (plus one newline per line) instead of per line: exact
    for byte-level BPE tokenizers, where a newline and the "event: " prefix never merge across.
    """
    items = ds.items[ds.items["item_id"].isin(ev["item_id"].unique())]
    body = items["title"].fillna("").astype(str) + " — " + items["text"].fillna("").astype(str)
    item_tok = pd.Series(count_tokens(tokenizer, body.tolist()), index=items["item_id"].to_numpy())
    events = pd.unique(ev["event"])
    ev_tok = pd.Series(count_tokens(tokenizer, [f"{e}:" for e in events]) + 1, index=events)  # +1: newline
    per_event = ev["item_id"].map(item_tok).fillna(0).to_numpy() + ev["event"].map(ev_tok).to_numpy()
    return pd.Series(per_event, index=ev.index).groupby(ev["user_id"]).sum()
