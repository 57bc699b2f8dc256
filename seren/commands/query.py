"""`seren query`: score candidate items for a user on the served SerenGPT model (Triton)."""

from __future__ import annotations

from pathlib import Path

import typer

from seren.commands._common import JsonOpt, check_feature_dir, emit
from seren.errors import ConfigError, DataError


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def texts_from_features(
    user: str, items: list[str], target: str | None = None, data_dir: Path | None = None
) -> tuple[str, list[str]]:
    """The user's profile text (user_profile view) and the items' rendered texts (item_features view)."""
    from feature_repo.store import get_online, get_store
    from seren.profiles.text import item_text

    store = get_store(target, data_dir)
    prof = get_online(store, "user_profile", [user])
    row = prof.iloc[0]
    if row["status"] == "missing" or not str(row.get("profile_text") or "").strip():
        raise DataError(
            f"no profile for user {user!r} in the online store", "refresh profiles (nearline) or pass --profile-text"
        )
    feats = get_online(store, "item_features", items)
    missing = feats.loc[feats["status"] == "missing", "item_id"].tolist()
    if missing:
        raise DataError(
            f"item(s) {', '.join(missing)} not in the online store", "materialize item_features or check the ids"
        )
    return str(row["profile_text"]), item_text(feats).tolist()


def query(
    url: str = typer.Option(
        "127.0.0.1:8000",
        "--url",
        envvar="SEREN_TRITON_URL",
        help="Triton address host:port (http:// or grpc:// prefix allowed).",
    ),
    protocol: str = typer.Option(None, "--protocol", help="http or grpc [default: from the URL, else http]."),
    user: str = typer.Option(None, "--user", "-u", help="User id: profile read from the Feast user_profile view."),
    items: list[str] = typer.Option(
        None, "--items", "-i", help="Item ids (comma separated): texts from the item_features view."
    ),
    profile_text: str = typer.Option(None, "--profile-text", help="Raw profile text instead of --user."),
    item_text: list[str] = typer.Option(None, "--item-text", help="Raw item text (repeatable) instead of --items."),
    model: str = typer.Option("serengpt", "--model", help="Served model name."),
    feast_target: str = typer.Option(
        None, "--feast-target", help="Feature store target (local/redis/gcp) [env SEREN_FEAST_TARGET]."
    ),
    feast_dir: Path = typer.Option(
        None, "--feast-dir", help="Feature store data dir [default: <SEREN_HOME>/features]."
    ),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds per request."),
    retries: int = typer.Option(3, "--retries", help="Retries on transient errors (with backoff)."),
    as_json: bool = JsonOpt,
) -> None:
    """Score items for a user (texts from Feast) or raw texts; prints P(serendipitous) per item."""
    from serving.client import SerenClient

    item_ids = _split(items)
    raw_items = [t for t in (item_text or []) if t.strip()]
    if (user is None) == (profile_text is None):
        raise ConfigError(
            "give exactly one of --user or --profile-text",
            "e.g. --user u1 --items i1,i2 or --profile-text '...' --item-text '...'",
        )
    if bool(item_ids) == bool(raw_items):
        raise ConfigError("give exactly one of --items or --item-text", "e.g. --items i1,i2 or --item-text 'a book'")
    if user is not None and raw_items:
        raise ConfigError("--user reads item texts from Feast too", "use --items with --user")
    if user is not None:
        check_feature_dir(
            feast_dir, need_store=True, target=feast_target, opt="--feast-dir"
        )  # a read never creates a store
        profile, texts = texts_from_features(user, item_ids, feast_target, feast_dir)
        keys = item_ids
    else:
        if not profile_text.strip():
            raise ConfigError("--profile-text is empty", "pass the user's profile text")
        profile, texts = profile_text, raw_items
        keys = item_ids or [f"item_{i}" for i in range(len(raw_items))]
    with SerenClient(url, protocol, timeout=timeout, retries=retries, model=model) as client:
        scores = client.score(profile, texts)
    rows = [{"item": k, "score": round(float(s), 6)} for k, s in zip(keys, scores, strict=True)]
    out = {"url": client.url, "protocol": client.protocol, "model": model, "user": user, "scores": rows}
    width = max(len(r["item"]) for r in rows)
    human = "\n".join(f"{r['item']:<{width}}  {r['score']:.4f}" for r in sorted(rows, key=lambda r: -r["score"]))
    emit(out, as_json, human)


def register(root: typer.Typer) -> None:
    root.command("query")(query)
