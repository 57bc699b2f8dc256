"""`seren promote`: move a registered version into an environment's Triton, or roll it back."""

from __future__ import annotations

from pathlib import Path

import typer

from seren.commands._common import JsonOpt, emit
from seren.commands.registry import EnvFileOpt, RegistryOpt
from seren.errors import ConfigError


def promote_cmd(
    model: str = typer.Argument("serengpt", help="Model name in the registry."),
    version: int = typer.Option(None, "--version", help="Registered version to promote."),
    to: str = typer.Option(None, "--to", help="Target environment (dev, staging, prod)."),
    force: bool = typer.Option(False, "--force", help="Override the champion/challenger and environment-order checks."),
    reason: str = typer.Option("", "--reason", help="Why (required with --force; recorded in the audit log)."),
    rollback: bool = typer.Option(False, "--rollback", help="Put the environment's previous version back."),
    env: str = typer.Option(None, "--env", help="Environment to roll back (with --rollback)."),
    registry: str = RegistryOpt,
    environments: Path = EnvFileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Check (validation, champion/challenger), deploy to Triton, smoke-test, record; roll back on failure.

    e.g. `seren promote serengpt --version 3 --to staging`, `seren promote serengpt --rollback --env staging`.
    """
    from seren.registry import promote
    from seren.registry import rollback as do_rollback

    if rollback:
        if version is not None or to is not None or force:
            raise ConfigError("--rollback takes --env (and --reason) only", "drop --version/--to/--force")
        if not env:
            raise ConfigError("--rollback needs --env", "e.g. seren promote serengpt --rollback --env staging")
        res = do_rollback(model, env, reason=reason, registry=registry, environments=environments)
        emit(
            res,
            as_json,
            f"rolled back {model} in {env}: v{res['previous_version']} -> v{res['version']} "
            f"(Triton version {res['triton_version']}; {res['deployment']['verification']})",
        )
        return
    if env is not None:
        raise ConfigError("--env is for --rollback", "use --to ENV to promote")
    if version is None or to is None:
        raise ConfigError("promote needs --version and --to", "e.g. seren promote serengpt --version 3 --to staging")
    res = promote(model, version, to, force=force, reason=reason, registry=registry, environments=environments)
    cc = res["checks"].get("champion_challenger", {})
    emit(
        res,
        as_json,
        f"promoted {model} v{version} to {to} (Triton version {res['triton_version']}; "
        f"{res['deployment']['verification']})"
        + (f"\n  champion/challenger: {cc.get('detail')}" if cc else "")
        + (f"\n  overridden by --force: {', '.join(res['overridden'])} ({reason})" if res.get("overridden") else ""),
    )


def register(root: typer.Typer) -> None:
    root.command("promote")(promote_cmd)
