"""View schemas, declared once and free of Feast imports (the CLI validates input with them
before paying Feast's import time).

``definitions`` turns these into Feast objects; ``store`` uses them to create empty offline
tables for push-backed views and to align pushed frames with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pyarrow as pa

from seren.errors import ConfigError

TIMESTAMP = "event_timestamp"
CREATED = "created"

# dtype names used below -> arrow types of the offline tables
ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "float32": pa.float32(),
    "string": pa.string(),
    "list<string>": pa.list_(pa.string()),
    "list<float32>": pa.list_(pa.float32()),
}


@dataclass(frozen=True)
class ViewSpec:
    name: str
    entity: str
    fields: tuple[tuple[str, str], ...]
    ttl: timedelta | None
    push_source: str | None = None
    description: str = ""

    @property
    def features(self) -> list[str]:
        return [n for n, _ in self.fields]


ENTITIES: dict[str, str] = {"user": "user_id", "item": "item_id", "cluster_pair": "cluster_pair"}

# ttl is the freshness the *reader* enforces by default (Feast 0.67 ignores TTL on online reads);
# batch snapshots carry no ttl: a statistic does not expire, it is replaced by the next snapshot.
VIEWS: dict[str, ViewSpec] = {
    v.name: v
    for v in (
        ViewSpec(
            "user_stats",
            "user",
            (
                ("n_events", "int64"),
                ("n_positive", "int64"),
                ("n_skips", "int64"),
                ("n_items", "int64"),
                ("positive_rate", "float32"),
                ("days_since_last_event", "float32"),
                ("active_days", "int64"),
                ("category_entropy", "float32"),
                ("top_categories", "string"),
                ("price_band", "string"),
            ),
            None,
            description="Behaviour statistics per user (snapshot at event_timestamp).",
        ),
        ViewSpec(
            "item_features",
            "item",
            (
                ("title", "string"),
                ("text", "string"),
                ("category", "string"),
                ("top_category", "string"),
                ("popularity", "float32"),
                ("price", "float32"),
                ("n_positive", "int64"),
            ),
            None,
            description="Item metadata and observed engagement.",
        ),
        ViewSpec(
            "user_profile",
            "user",
            (("profile_text", "string"), ("profile_tokens", "int64")),
            timedelta(days=2),
            push_source="user_profile_push",
            description="SERAL cognition profile, refreshed by the nearline job.",
        ),
        ViewSpec(
            "user_candidates",
            "user",
            (
                ("candidate_item_ids", "list<string>"),
                ("candidate_scores", "list<float32>"),
                ("main_item_ids", "list<string>"),
                ("explore_item_ids", "list<string>"),
                ("cluster_pair", "string"),
            ),
            timedelta(days=2),
            push_source="user_candidates_push",
            description=(
                "Top serendipitous candidates scored by SerenGPT, the main slate, and the exploration slate "
                "(recommender restricted to the novel clusters of the user's last cluster pair 'c1|c2')."
            ),
        ),
        ViewSpec(
            "novel_interests",
            "cluster_pair",
            (("novel_clusters", "list<string>"), ("novel_scores", "list<float32>")),
            timedelta(days=35),
            push_source="novel_interest_push",
            description="Cluster pair 'c1|c2' -> novel next clusters (retrained monthly).",
        ),
    )
}
PUSH_SOURCES: dict[str, str] = {v.push_source: v.name for v in VIEWS.values() if v.push_source}
BATCH_VIEWS: tuple[str, ...] = tuple(v for v, s in VIEWS.items() if not s.push_source)


def check_view(view: str) -> ViewSpec:
    if view not in VIEWS:
        raise ConfigError(f"unknown feature view {view!r}", f"use one of {', '.join(VIEWS)}")
    return VIEWS[view]


def join_key(view: str) -> str:
    return ENTITIES[check_view(view).entity]


def arrow_schema(view: str) -> pa.Schema:
    """Column layout of a view's offline table: key, features, event time, created time."""
    spec = check_view(view)
    ts = pa.timestamp("us", tz="UTC")
    cols = [pa.field(join_key(view), pa.string())]
    cols += [pa.field(n, ARROW_TYPES[t]) for n, t in spec.fields]
    return pa.schema(cols + [pa.field(TIMESTAMP, ts), pa.field(CREATED, ts)])


def offline_table_path(data_dir: Path, view: str) -> Path:
    return Path(data_dir) / "offline" / f"{view}.parquet"
