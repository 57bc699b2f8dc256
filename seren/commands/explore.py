"""`seren explore --user U`: the user's last two interest clusters, the novel clusters the pair
table proposes, and sequence-recommender items restricted to those clusters."""

from __future__ import annotations

from pathlib import Path

import typer

from seren.commands._common import JsonOpt, emit


def explore(
    user: str = typer.Option(..., "--user", "-u", help="User id from the dataset."),
    data: Path = typer.Option(
        None, "--data", help="Dataset directory (default: the one the published exploration run used)."
    ),
    table: Path = typer.Option(
        None, "--table", help="Pair table parquet (default: <SEREN_HOME>/exploration/pair_table.parquet)."
    ),
    clusters: Path = typer.Option(
        None, "--clusters", help="Clusters directory (default: <SEREN_HOME>/exploration/clusters)."
    ),
    published: Path = typer.Option(
        None, "--dir", help="Published exploration directory (default: <SEREN_HOME>/exploration)."
    ),
    seqrec: Path = typer.Option(
        None, "--seqrec", help="Sequence recommender directory (default: <SEREN_HOME>/exploration/seqrec)."
    ),
    n: int = typer.Option(3, "--n", "-n", min=1, help="Novel clusters to show."),
    k: int = typer.Option(10, "--k", "-k", min=1, help="Restricted recommendations to show."),
    as_json: bool = JsonOpt,
) -> None:
    """Show a user's last two interest clusters, the novel clusters to explore, and restricted recommendations."""
    from seren.exploration.workflow import explore_user

    out = explore_user(user, data=data, table=table, clusters=clusters, published=published, n=n, k=k, seqrec=seqrec)
    if out["recommendations"]:  # laid out by the one slate function (dedup, k), as every other surface
        from seren.recommend import CachedCandidates, build_slate

        by_id = {r["item_id"]: r for r in out["recommendations"]}
        slots, _ = build_slate(CachedCandidates(main=list(by_id)), k=min(k, len(by_id)), n_serendipity=0, n_explore=0)
        out["recommendations"] = [by_id[s["item_id"]] for s in slots]
    lines = [f"user {out['user_id']}", "last clusters:"]
    lines += [f"  {c['cluster_id']}  {c['description']}" for c in out["last_clusters"]]
    lines.append(f"novel clusters ({out['source']}):")
    lines += [
        f"  {i}. {c['cluster_id']}  {c['description']}  score={c['score']:.4g}"
        + ("" if c["new_to_user"] else "  (already seen)")
        for i, c in enumerate(out["novel_clusters"], 1)
    ]
    if out["recommendations"]:
        lines.append("recommendations in the novel clusters:")
        lines += [
            f"  {i}. {r['item_id']}  {r.get('title', '')}  [{r.get('cluster_id', '')}]"
            for i, r in enumerate(out["recommendations"], 1)
        ]
    else:
        lines.append(f"recommendations in the novel clusters: {out['recommendations_status']}")
    emit(out, as_json, "\n".join(lines))


def register(root: typer.Typer) -> None:
    root.command("explore")(explore)
