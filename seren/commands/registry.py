"""Model registry: register versions, list and show them, environments, audit log, integrity."""

from __future__ import annotations

from pathlib import Path

import typer

from seren.commands._common import JsonOpt, emit
from seren.errors import ConfigError, SerenError

NAME = "registry"
app = typer.Typer(no_args_is_help=True, help=__doc__)

RegistryOpt = typer.Option(
    None,
    "--registry",
    help="Registry: a directory or gs://bucket/prefix (default: $SEREN_REGISTRY, the environments file, <SEREN_HOME>/registry).",
)
EnvFileOpt = typer.Option(
    None, "--environments", help="Environments file (default: $SEREN_ENVIRONMENTS or seren/registry/environments.yaml)."
)


def _open(registry: str | None, environments: Path | None):  # noqa: ANN202
    from seren.registry import Registry, load_environments, registry_uri

    cfg = load_environments(environments)
    return Registry(registry_uri(registry, cfg)), cfg


def _metric(man: dict, name: str) -> str:
    v = man.get("metrics", {}).get(name)
    return f"{v:.4f}" if isinstance(v, float) else "-"


@app.command("register")
def register_cmd(
    model: str = typer.Argument("serengpt", help="Model name."),
    model_dir: Path = typer.Option(None, "--model-dir", help="Merged Hugging Face model directory."),
    onnx: Path = typer.Option(None, "--onnx", help="Exported scorer (.onnx file, or a directory with model.onnx)."),
    tokenizer_dir: Path = typer.Option(None, "--tokenizer-dir", help="Tokenizer dir (needed with --onnx alone)."),
    validation: Path = typer.Option(None, "--validation", help="Validation report JSON (serving.validate)."),
    evaluation: Path = typer.Option(
        None, "--evaluation", help="Evaluation metrics JSON (flat, {metrics:..} or ablation.json)."
    ),
    evaluation_report: Path = typer.Option(None, "--evaluation-report", help="Evaluation report (Markdown)."),
    card: Path = typer.Option(None, "--card", help="Model card (Markdown) (default: generated)."),
    version: int = typer.Option(None, "--version", help="Version number (default: next free)."),
    meta: list[str] = typer.Option([], "--meta", help="Provenance KEY=VALUE (repeatable)."),
    registry: str = RegistryOpt,
    environments: Path = EnvFileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Store a new immutable version (files + hashes + model card + reports)."""
    metadata = {}
    for item in meta:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise ConfigError(f"--meta {item!r} is not KEY=VALUE", "write it as --meta base_model=smollm2")
        metadata[k.strip()] = v
    for p in (model_dir, onnx, tokenizer_dir, evaluation_report, card):
        if p is not None and not p.exists():
            raise ConfigError(f"{p} does not exist", "check the path")
    reg, _ = _open(registry, environments)
    man = reg.register(
        model,
        model_dir=model_dir,
        onnx=onnx,
        tokenizer_dir=tokenizer_dir,
        validation=validation,
        evaluation=evaluation,
        evaluation_report=evaluation_report,
        card=card,
        version=version,
        metadata=metadata,
    )
    emit(
        {**man, "registry": reg.uri},
        as_json,
        f"registered {model} v{man['version']} in {reg.uri} ({len(man['files'])} files, "
        f"validation {'-' if man['validation'] is None else 'pass' if man['validation']['passed'] else 'FAIL'})",
    )


@app.command("list")
def list_cmd(
    model: str = typer.Argument(None, help="Only this model."),
    registry: str = RegistryOpt,
    environments: Path = EnvFileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Versions with their evaluation metric, validation result and the environments serving them."""
    reg, cfg = _open(registry, environments)
    metric = cfg.promotion.metric
    rows = []
    warnings: list[str] = []  # one unreadable version or pointer must not hide all the others
    for m in [model] if model else reg.models():
        current = {}
        for e in cfg.order():
            try:
                current[e] = reg.pointer(m, e).version
            except SerenError as exc:
                warnings.append(f"warning: {m} {e} pointer unreadable: {exc.problem}")
        for v in reg.versions(m):
            try:
                man = reg.manifest(m, v)
            except SerenError as exc:
                warnings.append(f"warning: {m} v{v} skipped: {exc.problem}")
                rows.append({"model": m, "version": v, "error": exc.problem})
                continue
            val = man.get("validation")
            rows.append(
                {
                    "model": m,
                    "version": v,
                    "created_at": man["created_at"],
                    "created_by": man["created_by"],
                    metric: man.get("metrics", {}).get(metric),
                    "validation_passed": None if val is None else val["passed"],
                    "environments": [e for e, cv in current.items() if cv == v],
                }
            )
    lines = [f"{'model':<12} {'ver':>4}  {'created':<24} {metric:>8}  {'valid':<5}  environments"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['model']:<12} {r['version']:>4}  UNREADABLE (skipped): {r['error']}")
            continue
        val = "-" if r["validation_passed"] is None else "pass" if r["validation_passed"] else "FAIL"
        score = f"{r[metric]:.4f}" if isinstance(r[metric], float) else "-"
        lines.append(
            f"{r['model']:<12} {r['version']:>4}  {r['created_at'][:23]:<24} {score:>8}  {val:<5}  {','.join(r['environments'])}"
        )
    for w in warnings:
        typer.echo(w, err=True)
    emit(rows, as_json, "\n".join(lines) if rows else f"no versions in {reg.uri}")


@app.command("show")
def show_cmd(
    model: str = typer.Argument("serengpt", help="Model name."),
    version: int = typer.Option(None, "--version", help="Version (default: latest)."),
    card: bool = typer.Option(False, "--card", help="Print the model card."),
    registry: str = RegistryOpt,
    environments: Path = EnvFileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """A version's manifest (files, hashes, metrics, validation) and where it is deployed."""
    reg, cfg = _open(registry, environments)
    info = reg.show(model, version, cfg.order())
    if card:
        typer.echo(reg.read_text(model, info["version"], "model_card.md") or "(no model card)")
        return
    val = info.get("validation")
    human = "\n".join(
        [
            f"{model} v{info['version']}  ({reg.uri})",
            f"  created {info['created_at']} by {info['created_by']}",
            f"  {cfg.promotion.metric}: {_metric(info, cfg.promotion.metric)}   validation: "
            + ("-" if val is None else "pass" if val["passed"] else f"FAIL {val['gates']}"),
            f"  current in: {', '.join(info['current_in']) or '-'}   (environments: "
            + (", ".join(f"{e}=v{v}" for e, v in info["environments"].items()) or "none deployed")
            + ")",
            "  files:",
            *[f"    {rel:<48} {f['size']:>12}  {f['sha256'][:16]}" for rel, f in info["files"].items()],
        ]
    )
    emit(info, as_json, human)


@app.command("verify")
def verify_cmd(
    model: str = typer.Argument("serengpt", help="Model name."),
    version: int = typer.Option(..., "--version", help="Version to check."),
    registry: str = RegistryOpt,
    environments: Path = EnvFileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Re-hash every file of a version against its manifest (exit non-zero on any mismatch)."""
    reg, _ = _open(registry, environments)
    reg.verify(model, version)
    n = len(reg.manifest(model, version)["files"])
    emit({"model": model, "version": version, "ok": True, "files": n}, as_json, f"{model} v{version}: {n} files match")


@app.command("envs")
def envs_cmd(
    model: str = typer.Argument("serengpt", help="Model name."),
    registry: str = RegistryOpt,
    environments: Path = EnvFileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Environments in promotion order with their Triton repository, URL and current version."""
    reg, cfg = _open(registry, environments)
    rows = []
    for name in cfg.order():
        env = cfg.environments[name]
        ptr = reg.pointer(model, name)
        rows.append(
            {
                "env": name,
                "requires": env.requires,
                "version": ptr.version,
                "triton_version": ptr.data.get("triton_version"),
                "updated_at": ptr.data.get("updated_at"),
                "previous": [h.get("version") for h in ptr.data.get("history", [])],
                "model_repository": str(env.model_repository),
                "triton_url": env.triton_url or None,
                "target": env.target,
            }
        )
    lines = [f"environments from {cfg.source}; registry {reg.uri}"]
    for r in rows:
        cur = f"v{r['version']} (triton {r['triton_version']})" if r["version"] else "-"
        lines.append(f"  {r['env']:<8} {cur:<18} url {r['triton_url'] or '-':<22} repo {r['model_repository']}")
    emit(rows, as_json, "\n".join(lines))


@app.command("audit")
def audit_cmd(
    model: str = typer.Argument(None, help="Only this model."),
    limit: int = typer.Option(20, "--limit", help="Last N records (0: all)."),
    registry: str = RegistryOpt,
    environments: Path = EnvFileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The append-only promotion audit log (who, when, from, to, version, reason, result)."""
    reg, _ = _open(registry, environments)
    rows = reg.audit(model)
    rows = rows[-limit:] if limit > 0 else rows
    lines = [
        f"{r['at'][:23]}  {r['who']:<16} {r['action']:<9} {r['model']} v{r.get('version')} "
        f"{r.get('from_env') or '-'} -> {r['to_env']}  {r['result']}"
        + (f" (forced: {r['reason']})" if r.get("forced") else f" ({r['reason']})" if r.get("reason") else "")
        + (f": {r['detail']}" if r.get("detail") else "")
        for r in rows
    ]
    emit(rows, as_json, "\n".join(lines) if lines else "audit log is empty")
