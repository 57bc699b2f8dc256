"""Build and inspect cognition profiles (compact per-user prompt text, SERAL stage 1)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from seren.commands._common import JsonOpt, emit
from seren.errors import ConfigError
from seren.io import check_out_file

NAME = "profiles"
app = typer.Typer(no_args_is_help=True, help=__doc__)
_err = Console(stderr=True)


def _is_profiles_file(path: Path) -> bool:
    """A parquet file with a profile_text column: an earlier `profiles build` output, safe to replace."""
    try:
        import pyarrow.parquet as pq

        return "profile_text" in pq.read_schema(path).names
    except Exception:  # not parquet at all
        return False


@app.command("build")
def build(
    data: Path = typer.Option(..., "--data", help="Dataset directory (from `seren data generate/import-*`)."),
    out: Path = typer.Option(..., "--out", help="Profiles parquet file to write (atomically)."),
    budget: int = typer.Option(160, "--budget", help="Token budget per profile (base-model tokenizer)."),
    backend: str = typer.Option(
        "none", "--backend", help="Summarise short/long-term parts with: none | local | openai."
    ),
    backend_model: str = typer.Option("smollm2", "--backend-model", help="Model for --backend local (name or HF dir)."),
    base_model: str = typer.Option(
        "smollm2", "--base-model", "--tokenizer", help="Base model (name or HF dir) whose tokenizer counts the budget."
    ),
    as_of: str = typer.Option("", "--as-of", help="Use only events before this ISO time (default: all)."),
    label_frac: float = typer.Option(
        0.0, "--label-frac", help="Cut off the last fraction of events (kept for labeling); ignored with --as-of."
    ),
    snapshots: int = typer.Option(
        1, "--snapshots", help="With --label-frac: profiles as of this many cutoffs (more leak-free labels)."
    ),
    per_user: bool = typer.Option(
        True,
        "--per-user/--global-cutoffs",
        help="With --label-frac: cut each user's own history (default) or all events at global times.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace --out even when it is not a profiles file."),
    as_json: bool = JsonOpt,
) -> None:
    """Compress each user's history into a profile within the token budget; prints size metrics."""
    from seren.profiles.io import build_profiles_file

    if backend not in ("none", "local", "openai"):
        raise ConfigError(f"unknown backend {backend!r}", "use --backend none, local or openai")
    check_out_file(out)
    if out.is_file() and not force and not _is_profiles_file(out):
        raise ConfigError(
            f"--out {out} exists and is not a profiles file seren wrote",
            "pass a new path, or add --force to replace it",
        )
    kw = {"model_dir": backend_model} if backend == "local" else {}
    with _err.status("building profiles"):
        metrics = build_profiles_file(
            data,
            out,
            base_model,
            budget,
            as_of or None,
            label_frac,
            backend,
            kw,
            snapshots,
            per_user and label_frac > 0,
        )
    metrics["out"] = str(out)
    human = (
        f"wrote {metrics['n_users']} profiles to {out}: mean {metrics['mean_profile_tokens']} tokens "
        f"(p95 {metrics['p95_profile_tokens']}, budget {budget}), raw history mean {metrics['mean_raw_tokens']} "
        f"tokens, compression {metrics['compression_ratio']}x"
    )
    if metrics.get("llm_calls"):
        human += f"; summaries {metrics['llm_calls'] - metrics['llm_failures']}/{metrics['llm_calls']}"
    if metrics.get("as_of_per_user"):
        human += f"; up to {metrics['n_snapshots']} per-user snapshots"
    elif metrics.get("n_snapshots", 1) > 1:
        human += f"; {metrics['n_snapshots']} snapshots from {metrics['as_of']}"
    elif metrics.get("as_of"):
        human += f"; events before {metrics['as_of']}"
    emit(metrics, as_json, human)


@app.command("show")
def show(
    profiles: Path = typer.Option(..., "--profiles", help="Profiles parquet written by `seren profiles build`."),
    user: list[str] = typer.Option(..., "--user", help="User id (repeatable)."),
    as_json: bool = JsonOpt,
) -> None:
    """Print the profile text of one or more users."""
    from seren.errors import DataError
    from seren.profiles.io import read_profiles

    df = read_profiles(profiles)
    df = df.sort_values("as_of", kind="stable").drop_duplicates("user_id", keep="last") if "as_of" in df else df
    df = df.set_index("user_id")  # latest snapshot per user
    missing = [u for u in user if u not in df.index]
    if missing:
        raise DataError(
            f"no profile for user(s) {', '.join(map(repr, missing[:3]))}", "pass user ids present in the file"
        )
    rows = [
        {"user_id": u, "profile_text": df.at[u, "profile_text"], "profile_tokens": int(df.at[u, "profile_tokens"])}
        for u in user
    ]
    human = "\n\n".join(f"# {r['user_id']} ({r['profile_tokens']} tokens)\n{r['profile_text']}" for r in rows)
    emit(rows, as_json, human)
