"""Feedback alignment (the 2025 follow-up): prefer novel clusters users actually liked.

The novelty LLM learns what users *moved to*; it does not know how exposures to a novel cluster
were received. Here later engagement is the reward:

1. Feedback: every exposure (any event) to an item whose cluster is novel for the user at that
   moment, with context = the user's last two positive clusters, is one trial; it succeeded when
   the event is positive (click/like/purchase or rating >= 4). Trials are aggregated per
   (c1, c2, c_novel) and period (before / after the transitions' cutoff).
2. Normalisation: the positive rate is smoothed towards the global novel-exposure rate
   (``prior`` pseudo-trials) and divided by it, so 1.0 = average; triples with fewer than
   ``min_support`` trials are not used for training.
3. Alignment scorer: a binomial logistic regression on simple triple features (centroid
   similarity and same-top-cluster with c1/c2, the candidate's popularity, its own novel
   feedback rate, co-occurrence with the pair), all computed from the training period only.
4. Best-of-n at table time: the LLM proposes n candidates, the scorer keeps the best k (RLHF on
   the LLM was prone to reward hacking in the paper; best-of-n keeps answers valid by design).

Gain is measured by replay on the held-out period: the positive rate of held-out exposures whose
(pair, novel cluster) the table recommends, aligned vs un-aligned.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.data.schema import is_positive
from seren.errors import DataError
from seren.exploration.clusters import Clusters
from seren.io import atomic_dir

FEATURES = ("sim_c1", "sim_c2", "same_top_c1", "same_top_c2", "log_pop", "novel_rate", "log_cooc")


def novel_exposures(interactions: pd.DataFrame, item_to_cluster: dict[str, str]) -> pd.DataFrame:
    """One row per exposure to a cluster new to the user, with the user's last two positive
    clusters at that time: user_id, c1, c2, c_novel, positive (0/1), timestamp."""
    df = interactions[["user_id", "item_id", "event", "rating", "timestamp"]].copy()
    df["cluster_id"] = df["item_id"].astype(str).map(item_to_cluster)
    df = df.dropna(subset=["cluster_id"]).sort_values(["user_id", "timestamp"], kind="stable")
    df["positive"] = is_positive(df).astype(int).to_numpy()
    rows: list[tuple[str, str, str, str, int, Any]] = []
    users, clusters, pos, ts = (
        df["user_id"].to_numpy(),
        df["cluster_id"].to_numpy(),
        df["positive"].to_numpy(),
        df["timestamp"].to_numpy(),
    )
    cur = None
    seen: set[str] = set()
    last: list[str] = []
    for u, c, p, t in zip(users, clusters, pos, ts, strict=True):
        if u != cur:
            cur, seen, last = u, set(), []
        if c not in seen and len(last) >= 2:
            rows.append((u, last[-2], last[-1], c, int(p), t))
        if p:
            seen.add(c)
            if not last or last[-1] != c:
                last.append(c)
    out = pd.DataFrame(rows, columns=["user_id", "c1", "c2", "c_novel", "positive", "timestamp"])
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    return out


def aggregate_feedback(exposures: pd.DataFrame, cutoff: pd.Timestamp, prior: float = 5.0) -> pd.DataFrame:
    """(c1, c2, c_novel, period) -> trials, positives, rate, smoothed rate and normalised rate
    (smoothed / the period's global rate; 1.0 = average)."""
    if exposures.empty:
        raise DataError(
            "no exposures to clusters new to the user", "use data with impressions/skips as well as positives"
        )
    e = exposures.assign(period=np.where(exposures["timestamp"] < cutoff, "train", "test"))
    agg = e.groupby(["c1", "c2", "c_novel", "period"], as_index=False).agg(
        trials=("positive", "size"), positives=("positive", "sum")
    )
    base = e.groupby("period")["positive"].mean()
    g = agg["period"].map(base).to_numpy()
    agg["rate"] = agg["positives"] / agg["trials"]
    agg["smoothed_rate"] = (agg["positives"] + prior * g) / (agg["trials"] + prior)
    agg["normalised"] = agg["smoothed_rate"] / np.maximum(g, 1e-9)
    return agg


class TripleFeatures:
    """Features of (c1, c2, candidate) triples from cluster geometry and training-period behaviour."""

    def __init__(
        self, clusters: Clusters, exposures: pd.DataFrame, sequences: pd.DataFrame | None, cutoff: pd.Timestamp
    ) -> None:
        self.ids = clusters.ids
        self.index = {c: i for i, c in enumerate(self.ids)}
        cent = clusters.centroids / np.maximum(np.linalg.norm(clusters.centroids, axis=1, keepdims=True), 1e-12)
        self.sim = cent @ cent.T
        self.top = clusters.clusters["top_id"].to_numpy()
        n = len(self.ids)
        train_exp = exposures[exposures["timestamp"] < cutoff]
        g = float(train_exp["positive"].mean()) if len(train_exp) else 0.0
        by = train_exp.groupby("c_novel")["positive"].agg(["sum", "size"]).reindex(self.ids, fill_value=0)
        self.novel_rate = ((by["sum"] + 5.0 * g) / (by["size"] + 5.0)).to_numpy()
        self.pop = np.zeros(n)
        self.cooc = np.zeros((n, n))
        if sequences is not None and not sequences.empty:
            s = sequences[(sequences["timestamp"] < cutoff) & sequences["cluster_id"].isin(self.index)]
            self.pop = s["cluster_id"].value_counts().reindex(self.ids, fill_value=0).to_numpy(dtype=float)
            onehot = (
                pd.crosstab(s["user_id"], s["cluster_id"])
                .clip(upper=1)
                .reindex(columns=self.ids, fill_value=0)
                .to_numpy(dtype=float)
            )
            self.cooc = onehot.T @ onehot

    def __call__(self, c1: Sequence[str], c2: Sequence[str], c: Sequence[str]) -> np.ndarray:
        i1 = np.array([self.index[x] for x in c1], dtype=int)
        i2 = np.array([self.index[x] for x in c2], dtype=int)
        j = np.array([self.index[x] for x in c], dtype=int)
        return np.column_stack(
            [
                self.sim[i1, j],
                self.sim[i2, j],
                (self.top[i1] == self.top[j]).astype(float),
                (self.top[i2] == self.top[j]).astype(float),
                np.log1p(self.pop[j]),
                self.novel_rate[j],
                np.log1p(self.cooc[i1, j] + self.cooc[i2, j]),
            ]
        )


@dataclass
class Aligner:
    """Standardised logistic regression over FEATURES; persisted as JSON (no pickle)."""

    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    features: TripleFeatures | None = None
    metrics: dict[str, Any] | None = None

    def score(self, c1: Sequence[str], c2: Sequence[str], c: Sequence[str]) -> np.ndarray:
        """P(positive feedback) for each triple."""
        if self.features is None:
            raise DataError(
                "the aligner has no cluster features attached", "load it with Aligner.load(dir, clusters, ...)"
            )
        x = (self.features(c1, c2, c) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(x @ self.coef + self.intercept)))

    def rerank(self, pair: tuple[str, str], candidates: Sequence[str], k: int) -> list[tuple[str, float]]:
        """Best-of-n: the k candidates with the highest predicted feedback."""
        if not candidates:
            return []
        s = self.score([pair[0]] * len(candidates), [pair[1]] * len(candidates), list(candidates))
        order = np.argsort(-s, kind="stable")[:k]
        return [(candidates[i], float(s[i])) for i in order]

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        out_dir = Path(out_dir)
        with atomic_dir(out_dir) as tmp:
            blob = {
                "features": list(FEATURES),
                "coef": self.coef.tolist(),
                "intercept": self.intercept,
                "mean": self.mean.tolist(),
                "scale": self.scale.tolist(),
                "metrics": self.metrics or {},
            }
            (tmp / "aligner.json").write_text(json.dumps(blob, indent=2, default=str))
            if self.features is not None:
                f = self.features
                np.savez(
                    tmp / "features.npz",
                    ids=np.array(f.ids),
                    sim=f.sim,
                    top=f.top.astype(str),
                    novel_rate=f.novel_rate,
                    pop=f.pop,
                    cooc=f.cooc,
                )
        return out_dir

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Aligner:
        path = Path(path)
        f = path / "aligner.json"
        if not f.is_file():
            raise DataError(
                f"{path} is not an aligner directory", "train it with seren.exploration.alignment.train_aligner"
            )
        blob = json.loads(f.read_text())
        feats = None
        if (path / "features.npz").is_file():
            z = np.load(path / "features.npz", allow_pickle=False)
            feats = TripleFeatures.__new__(TripleFeatures)
            feats.ids = [str(x) for x in z["ids"]]
            feats.index = {c: i for i, c in enumerate(feats.ids)}
            feats.sim, feats.top, feats.novel_rate, feats.pop, feats.cooc = (
                z["sim"],
                z["top"],
                z["novel_rate"],
                z["pop"],
                z["cooc"],
            )
        return cls(
            np.array(blob["coef"]),
            float(blob["intercept"]),
            np.array(blob["mean"]),
            np.array(blob["scale"]),
            feats,
            blob.get("metrics"),
        )


def train_aligner(
    feedback: pd.DataFrame,
    features: TripleFeatures,
    min_support: int = 3,
    c: float = 1.0,
    seed: int = 0,
) -> Aligner:
    """Fit P(positive | triple) on training-period triples with >= min_support trials (binomial
    likelihood: each triple contributes its positives and negatives as weights)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    tr = feedback[(feedback["period"] == "train") & (feedback["trials"] >= min_support)]
    if tr.empty or tr["positives"].sum() == 0 or (tr["trials"] - tr["positives"]).sum() == 0:
        raise DataError(
            f"no training feedback with both outcomes at min_support={min_support} ({len(tr)} triple(s))",
            "lower min_support or use more interactions",
        )
    x = features(tr["c1"], tr["c2"], tr["c_novel"])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    xs = (x - mean) / scale
    X = np.vstack([xs, xs])
    y = np.r_[np.ones(len(xs)), np.zeros(len(xs))]
    w = np.r_[tr["positives"].to_numpy(float), (tr["trials"] - tr["positives"]).to_numpy(float)]
    keep = w > 0
    lr = LogisticRegression(C=c, random_state=seed, max_iter=1000).fit(X[keep], y[keep], sample_weight=w[keep])
    aligner = Aligner(coef=lr.coef_[0], intercept=float(lr.intercept_[0]), mean=mean, scale=scale, features=features)
    metrics: dict[str, Any] = {
        "train_triples": int(len(tr)),
        "train_trials": int(tr["trials"].sum()),
        "min_support": min_support,
    }
    te = feedback[
        (feedback["period"] == "test")
        & feedback["c1"].isin(features.index)
        & feedback["c2"].isin(features.index)
        & feedback["c_novel"].isin(features.index)
    ]
    if len(te):
        p = aligner.score(te["c1"], te["c2"], te["c_novel"])
        yt = np.r_[np.ones(len(te)), np.zeros(len(te))]
        wt = np.r_[te["positives"].to_numpy(float), (te["trials"] - te["positives"]).to_numpy(float)]
        if wt[yt == 1].sum() > 0 and wt[yt == 0].sum() > 0:
            metrics["heldout_auc"] = float(roc_auc_score(yt, np.r_[p, p], sample_weight=wt))
        metrics["heldout_trials"] = int(te["trials"].sum())
    metrics["coefficients"] = dict(zip(FEATURES, [round(float(v), 4) for v in lr.coef_[0]], strict=True))
    aligner.metrics = metrics
    return aligner


def replay_rate(table: dict[tuple[str, str], Sequence[str]], heldout: pd.DataFrame) -> dict[str, float]:
    """Positive rate of held-out novel exposures that the table would have recommended."""
    hit = np.array(
        [c in table.get((a, b), ()) for a, b, c in zip(heldout["c1"], heldout["c2"], heldout["c_novel"], strict=True)],
        dtype=bool,
    )
    matched = heldout[hit]
    trials = int(matched["trials"].sum()) if "trials" in matched else int(hit.sum())
    positives = int(matched["positives"].sum()) if "positives" in matched else int(matched["positive"].sum())
    return {"trials": trials, "positives": positives, "rate": positives / trials if trials else float("nan")}


def alignment_gain(
    unaligned: dict[tuple[str, str], Sequence[str]],
    aligned: dict[tuple[str, str], Sequence[str]],
    feedback: pd.DataFrame,
) -> dict[str, Any]:
    """Held-out positive-feedback rate of the aligned vs the un-aligned table (replay)."""
    te = feedback[feedback["period"] == "test"]
    if te.empty:
        raise DataError("no held-out feedback after the cutoff", "use a later cutoff or more interactions")
    u, a = replay_rate(unaligned, te), replay_rate(aligned, te)
    base = float(te["positives"].sum() / te["trials"].sum())
    gain = a["rate"] - u["rate"] if a["trials"] and u["trials"] else float("nan")
    return {
        "heldout_novel_exposure_rate": base,
        "unaligned": u,
        "aligned": a,
        "gain_abs": gain,
        "gain_rel": gain / u["rate"] if u["trials"] and u["rate"] > 0 else float("nan"),
    }
