"""The one place seren talks to Feast: open a store per target, write sources, apply,
materialize, read online features with freshness, push fresh rows.

Targets are YAML templates in ``feature_repo/targets/``; the chosen one is rendered into the
data dir (default ``$SEREN_HOME/features``) with absolute paths, so the repo stays clean and
``feast -c <data dir>`` sees the same state. The Python API is used throughout (the Feast CLI
costs ~10 s of imports per call).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from feature_repo.config import (
    available_targets,
    check_target,
    default_data_dir,
    redis_error,
    render_config,
    resolve_target,
    without_secrets,
)
from feature_repo.definitions import build_objects
from feature_repo.schema import (
    BATCH_VIEWS,
    CREATED,
    PUSH_SOURCES,
    TIMESTAMP,
    VIEWS,
    arrow_schema,
    check_view,
    join_key,
    offline_table_path,
)
from seren.errors import ConfigError, DataError
from seren.io import atomic_path, write_text

log = logging.getLogger(__name__)

__all__ = [
    "BATCH_VIEWS",
    "PUSH_SOURCES",
    "VIEWS",
    "apply",
    "available_targets",
    "check_view",
    "data_dir_of",
    "default_data_dir",
    "get_historical",
    "get_online",
    "get_store",
    "materialize",
    "push",
    "render_config",
    "resolve_target",
    "teardown",
    "write_offline",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def get_store(target: str | None = None, data_dir: Path | None = None) -> Any:
    """Open the Feast store for a target; the rendered config is written to the data dir."""
    from feast import FeatureStore, RepoConfig

    name = resolve_target(target)
    data_dir = Path(data_dir or default_data_dir()).resolve()
    raw = check_target(name, data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "offline").mkdir(exist_ok=True)
    # on disk without secrets (the in-memory config below keeps the password)
    write_text(data_dir / "feature_store.yaml", yaml.safe_dump(without_secrets(raw), sort_keys=False))
    try:
        config = RepoConfig(repo_path=data_dir, **raw)
        config.offline_store, config.online_store  # noqa: B018 - validates and imports the store classes
    except Exception as exc:  # Feast wraps a missing extra in its own import error type
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, ImportError) or "Could not import" in first:
            raise ConfigError(
                f"feature store target {name!r} needs a package that is not installed ({first})",
                "pip install 'seren[gcp]' (google-cloud-bigquery, google-cloud-datastore) for the gcp targets",
            ) from None
        raise ConfigError(
            f"invalid feature store config for target {name!r}: {first}", "check the target YAML"
        ) from None
    store = FeatureStore(repo_path=str(data_dir), config=config)
    return store


def data_dir_of(store: Any) -> Path:
    return Path(store.config.repo_path)


def _offline_cfg(store: Any) -> dict[str, Any]:
    cfg = store.config.offline_store
    return cfg.model_dump() if hasattr(cfg, "model_dump") else dict(cfg)


def _is_file_offline(store: Any) -> bool:
    return _offline_cfg(store).get("type") in ("file", "dask")


@contextlib.contextmanager
def _feast_call(store: Any, quiet: bool = True) -> Iterator[None]:
    """Keep Feast's prints off stdout (the CLI's --json owns it) and turn a lost Redis into
    a one-line ServiceError."""
    buf = io.StringIO()
    try:
        if quiet:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                yield
        else:
            yield
    except Exception as exc:
        online = store.config.online_store
        if getattr(online, "type", None) == "redis" and _is_redis_conn_error(exc):
            raise redis_error(online.connection_string, exc) from None
        raise
    finally:
        if buf.getvalue():
            log.debug("feast: %s", buf.getvalue().strip())


def _is_redis_conn_error(exc: BaseException) -> bool:
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is a dependency of the redis target
        return False
    return isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError))


# --- offline sources -------------------------------------------------------------------------


def _to_arrow(df: pd.DataFrame, view: str) -> pa.Table:
    schema = arrow_schema(view)
    df = df.copy()
    for c in (TIMESTAMP, CREATED):
        df[c] = pd.to_datetime(df[c], utc=True)
    try:
        return pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
        raise DataError(f"{view}: rows do not match the view schema ({exc})", "check the column types") from None


def _write_table(path: Path, table: pa.Table) -> Path:
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(table, tmp)
    return path


def ensure_push_tables(data_dir: Path) -> dict[str, Path]:
    """Empty offline tables for push-backed views (Feast reads their schema before a push)."""
    out = {}
    for view, spec in VIEWS.items():
        if spec.push_source:
            path = offline_table_path(data_dir, view)
            if not path.exists():
                _write_table(path, arrow_schema(view).empty_table())
            out[view] = path
    return out


def write_offline(
    ds: Any, data_dir: Path | None = None, as_of: datetime | Sequence[datetime] | None = None
) -> dict[str, Path]:
    """Write the batch views' offline tables from a dataset (one snapshot per ``as_of``,
    default: the last event) and create empty push tables. Batch tables are replaced, push
    tables (nearline output) are kept."""
    from seren.data.features import build_feature_tables

    data_dir = Path(data_dir or default_data_dir()).resolve()
    stamps = [as_of] if as_of is None or isinstance(as_of, datetime | pd.Timestamp) else list(as_of)
    parts: dict[str, list[pd.DataFrame]] = {v: [] for v in BATCH_VIEWS}
    for ts in stamps:
        for view, df in build_feature_tables(ds, ts).items():
            parts[view].append(df)
    out = {v: _write_table(offline_table_path(data_dir, v), _to_arrow(pd.concat(dfs), v)) for v, dfs in parts.items()}
    out.update(ensure_push_tables(data_dir))
    return out


@contextlib.contextmanager
def _offline_lock(data_dir: Path) -> Iterator[None]:
    """Serialise read-modify-write of offline tables between processes (nearline + CLI)."""
    lock = data_dir / ".offline.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _append_offline(data_dir: Path, view: str, df: pd.DataFrame) -> None:
    """Atomic, idempotent append: a re-pushed (key, event time) replaces the earlier row."""
    path = offline_table_path(data_dir, view)
    new = _to_arrow(df, view)
    with _offline_lock(data_dir):
        old = pq.read_table(path).cast(new.schema) if path.exists() else new.schema.empty_table()
        merged = pa.concat_tables([old, new]).to_pandas()
        key = join_key(view)
        merged = merged.drop_duplicates(subset=[key, TIMESTAMP], keep="last")
        _write_table(path, pa.Table.from_pandas(merged, schema=new.schema, preserve_index=False))


# --- registry and online store ---------------------------------------------------------------


def apply(store: Any) -> list[str]:
    """Register entities, sources and views (idempotent); returns 'kind:name' per object."""
    from feast import Entity, FeatureView, PushSource

    data_dir = data_dir_of(store)
    if _is_file_offline(store):
        ensure_push_tables(data_dir)
    objects = build_objects(data_dir, _offline_cfg(store))
    with _feast_call(store):
        store.apply(objects)
    kinds = {Entity: "entity", PushSource: "push_source", FeatureView: "feature_view"}
    return sorted(
        f"{next(k for t, k in kinds.items() if isinstance(o, t))}:{o.name}"
        for o in objects
        if isinstance(o, tuple(kinds))
    )


def _require_applied(store: Any, view: str) -> None:
    try:
        store.get_feature_view(view)
    except Exception:
        raise ConfigError(
            f"feature view {view!r} is not registered in {data_dir_of(store)}",
            "run `seren features apply` first",
        ) from None


def _count_rows(store: Any, view: str, start: datetime, end: datetime) -> int:
    """Entities materialized = distinct keys with a row in [start, end] (file sources only)."""
    if not _is_file_offline(store):
        return -1
    df = pd.read_parquet(offline_table_path(data_dir_of(store), view), columns=[join_key(view), TIMESTAMP])
    ts = pd.to_datetime(df[TIMESTAMP], utc=True)
    return int(df.loc[(ts >= start) & (ts <= end), join_key(view)].nunique())


def materialize(
    store: Any,
    end: datetime | None = None,
    start: datetime | None = None,
    views: Sequence[str] | None = None,
    on_view: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Load the latest offline row per entity in [start, end] into the online store.

    The whole window is reloaded each time (idempotent; a re-written snapshot with an older
    event time is not skipped as Feast's incremental mode would). Push views are included, so
    a flushed online store is rebuilt from the offline copies of pushed rows.
    """
    end = _utc(end) if end is not None else datetime.now(UTC)
    start = _utc(start) if start is not None else EPOCH
    names = list(views) if views else list(VIEWS)
    for v in names:
        check_view(v)
        _require_applied(store, v)
        if _is_file_offline(store) and not offline_table_path(data_dir_of(store), v).exists():
            raise DataError(
                f"offline table for {v!r} is missing in {data_dir_of(store) / 'offline'}",
                "run `seren features apply --data DATASET_DIR` to write it",
            )
    counts: dict[str, int] = {}
    for v in names:
        with _feast_call(store):
            store.materialize(start_date=start, end_date=end, feature_views=[v])
        counts[v] = _count_rows(store, v, start, end)
        if on_view is not None:
            on_view(v, counts[v])
    return counts


def _utc(ts: datetime | pd.Timestamp) -> datetime:
    t = pd.Timestamp(ts)
    return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).to_pydatetime()


def get_online(
    store: Any,
    view: str,
    ids: Sequence[str],
    max_age: timedelta | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Online rows for ``ids`` with freshness enforced here (Feast 0.67 does not apply TTL
    on online reads).

    Returns one row per id, in order: the key, the features, ``event_timestamp``, ``age_s``
    and ``status`` ("ok", "stale": older than ``max_age`` (default: the view's ttl; batch
    views have none), or "missing": nothing stored). Stale rows keep their values so a caller
    can still show them with the reason.
    """
    check_view(view)
    spec = VIEWS[view]
    key = join_key(view)
    feats = [n for n, _ in spec.fields]
    ids = [str(i) for i in ids]
    if not ids:
        return pd.DataFrame(columns=[key, *feats, TIMESTAMP, "age_s", "status"])
    with _feast_call(store, quiet=False):
        try:
            resp = store.get_online_features(
                features=[f"{view}:{f}" for f in feats], entity_rows=[{key: i} for i in ids]
            ).to_dict(include_event_timestamps=True)
        except Exception as exc:
            if type(exc).__name__ in ("FeatureViewNotFoundException", "FeatureViewNotFoundError"):
                _require_applied(store, view)
            raise
    # plain numpy on ~100 rows: the pandas-per-column version cost more than the Feast read
    n = len(ids)
    secs = np.zeros(n)
    present = np.zeros(n, dtype=bool)
    for f in feats:
        secs = np.maximum(secs, np.asarray([t or 0 for t in resp.get(f"{f}__ts", [0] * n)], dtype=float))
        present |= np.fromiter((v is not None for v in resp[f]), dtype=bool, count=n)
    present &= secs > 0
    now_s = (_utc(now) if now is not None else datetime.now(UTC)).timestamp()
    age = np.where(present, now_s - secs, np.nan)
    limit = max_age if max_age is not None else spec.ttl
    status = np.where(present, "ok", "missing").astype(object)
    if limit is not None and limit.total_seconds() > 0:
        status[present & (age > limit.total_seconds())] = "stale"
    cols: dict[str, Any] = {key: ids}
    for f, t in spec.fields:
        vals = resp[f]
        if t == "int64" and not present.all():  # keep counts integral when some rows are missing
            vals = pd.array(vals, dtype="Int64")
        cols[f] = vals
    cols[TIMESTAMP] = pd.to_datetime(np.where(present, secs, np.nan), unit="s", utc=True)
    cols["age_s"] = age
    cols["status"] = status
    return pd.DataFrame(cols)


def get_historical(store: Any, entity_df: pd.DataFrame, views: Sequence[str]) -> pd.DataFrame:
    """Point-in-time join: each entity row gets the feature values as of its event_timestamp.

    Exactly one output row per input row, in input order (Feast's file store drops an entity
    row whose every candidate feature row lies in its future; here such rows come back with
    missing features, as the other offline stores return them).
    """
    refs = []
    for v in views:
        refs += [f"{v}:{n}" for n in check_view(v).features]
    row = "__seren_row"
    ent = entity_df.reset_index(drop=True)
    ent = ent.assign(**{TIMESTAMP: pd.to_datetime(ent[TIMESTAMP], utc=True), row: range(len(ent))})
    with _feast_call(store):
        out = store.get_historical_features(entity_df=ent, features=refs, full_feature_names=len(views) > 1).to_df()
    out = out.drop_duplicates(subset=[row]).set_index(row).reindex(range(len(ent)))
    for c in ent.columns:
        if c != row:
            out[c] = ent[c]  # both indexed 0..n-1
    return out.reset_index(drop=True)[
        [*[c for c in ent.columns if c != row], *[c for c in out.columns if c not in ent.columns]]
    ]


def push(
    store: Any,
    source: str,
    df: pd.DataFrame,
    to: Literal["online", "online_and_offline"] = "online_and_offline",
) -> int:
    """Write fresh rows (e.g. nearline profiles/candidates) to a push source's view.

    ``event_timestamp`` defaults to now and ``created`` is always now. The offline copy is
    written first (atomically, de-duplicated on key + event time), so a push killed midway
    and re-run leaves one copy; the offline rows also let `materialize` rebuild the online store.
    """
    if source not in PUSH_SOURCES:
        raise ConfigError(f"unknown push source {source!r}", f"use one of {', '.join(PUSH_SOURCES)}")
    if to not in ("online", "online_and_offline"):
        raise ConfigError(f"unknown push mode {to!r}", "use 'online' or 'online_and_offline'")
    view = PUSH_SOURCES[source]
    _require_applied(store, view)
    key = join_key(view)
    feats = [n for n, _ in VIEWS[view].fields]
    missing = [c for c in [key, *feats] if c not in df.columns]
    if missing:
        raise DataError(
            f"push to {source}: missing column(s) {', '.join(missing)}", f"provide {', '.join([key, *feats])}"
        )
    if df.empty:
        return 0
    now = pd.Timestamp(datetime.now(UTC))
    rows = df[[key, *feats]].copy()
    rows[key] = rows[key].astype(str)
    rows[TIMESTAMP] = pd.to_datetime(df[TIMESTAMP], utc=True) if TIMESTAMP in df.columns else now
    rows[CREATED] = now
    table = _to_arrow(rows, view)  # validates types once for both stores
    rows = table.to_pandas()
    from feast.data_source import PushMode

    if to == "online_and_offline":
        if _is_file_offline(store):
            _append_offline(data_dir_of(store), view, rows)
        else:
            with _feast_call(store):
                store.write_to_offline_store(view, rows)
    with _feast_call(store):
        store.push(source, rows, to=PushMode.ONLINE)
    return len(rows)


def teardown(store: Any) -> None:
    """Drop the online tables and registry entries (offline files are left in place)."""
    with _feast_call(store):
        store.teardown()
