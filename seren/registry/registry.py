"""The versioned model store: register, list, show, fetch. Storage is a `Backend` (local dir or gs://)."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seren.errors import ConfigError, DataError
from seren.llm.card import version_card
from seren.registry.store import (
    Backend,
    ConflictError,
    Pointer,
    check_name,
    file_table,
    open_backend,
    sha256_file,
)

DEFAULT_MODEL = "serengpt"
FORMAT = 1
# Files a version may hold (relative paths inside a version).
MODEL_DIR, ONNX_DIR, TOKENIZER_DIR = "model", "onnx", "tokenizer"
PACKED_ONNX = "packed.onnx"
CARD, EVALUATION, EVALUATION_MD, VALIDATION = "model_card.md", "evaluation.json", "evaluation.md", "validation.json"
# the validated model's judgments on held-out candidates: monitoring's reference for this version
REFERENCE = "reference_judgments.parquet"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx", ".plan", ".ckpt")


def who() -> str:
    """The actor recorded in manifests and the audit log ($SEREN_USER, else user@host)."""
    if os.environ.get("SEREN_USER"):
        return os.environ["SEREN_USER"]
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _read_json(obj: str | os.PathLike[str] | dict | None, what: str) -> dict[str, Any] | None:
    if obj is None or isinstance(obj, dict):
        return obj
    p = Path(obj)
    if p.is_dir():
        for name in ("report.json", f"{what}.json", "ablation.json", "metrics.json"):
            if (p / name).is_file():
                p = p / name
                break
    if not p.is_file():
        raise DataError(f"{what} report {p} not found", f"pass the {what} report JSON file")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{what} report {p} is not JSON ({exc.msg})", f"pass the {what} report JSON file") from None
    if not isinstance(data, dict):
        raise DataError(f"{what} report {p} is not a JSON object", f"pass the {what} report JSON file")
    return data


def evaluation_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Flat numeric metrics of an evaluation report: an ablation result (rows/order), {"metrics": {...}}, or flat."""
    if "rows" in report and "order" in report:
        from seren.serengpt.evaluate import flat_metrics

        return flat_metrics(report)
    src = report.get("metrics") if isinstance(report.get("metrics"), dict) else report
    return {k: float(v) for k, v in src.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _copy_tree(src: Path, dst: Path, skip_weights: bool = False) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and not (skip_weights and p.suffix in _WEIGHT_SUFFIXES):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dst / rel)


class Registry:
    """`Registry(uri)`: versions of models under a local directory or gs://bucket/prefix."""

    def __init__(self, uri: str | os.PathLike[str] | None = None, backend: Backend | None = None) -> None:
        from seren.registry.config import load_environments, registry_uri

        if backend is None:
            uri = registry_uri(str(uri)) if uri else registry_uri(None, load_environments())
            backend = open_backend(str(uri))
        self.backend = backend
        self.uri = self.backend.uri

    # -- writing -------------------------------------------------------------------------------
    def register(
        self,
        model: str = DEFAULT_MODEL,
        *,
        model_dir: str | os.PathLike[str] | None = None,
        onnx: str | os.PathLike[str] | None = None,
        tokenizer_dir: str | os.PathLike[str] | None = None,
        validation: str | os.PathLike[str] | dict | None = None,
        evaluation: str | os.PathLike[str] | dict | None = None,
        evaluation_report: str | os.PathLike[str] | None = None,
        card: str | os.PathLike[str] | None = None,
        version: int | None = None,
        metadata: dict[str, Any] | None = None,
        reference_judgments: str | os.PathLike[str] | None = None,
    ) -> dict[str, Any]:
        """Store a new immutable version; returns its manifest.

        onnx: a .onnx file or a directory holding model.onnx (+ model.plan, export.json). The
        tokenizer comes from model_dir, else tokenizer_dir (required when only ONNX is given).
        reference_judgments: the validate step's judgments (parquet), stored as `REFERENCE` so that
        monitoring compares against the version an environment serves (`resolve_reference`).
        """
        check_name("model", model)
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise ConfigError(f"version must be a positive integer, got {version!r}", "pass --version 1, 2, ...")
        if model_dir is None and onnx is None:
            raise ConfigError("nothing to register", "pass a merged model directory and/or an ONNX export")
        mdir = Path(model_dir) if model_dir is not None else None
        if mdir is not None and not (mdir / "config.json").is_file():
            raise DataError(
                f"{mdir} is not a Hugging Face model directory (no config.json)", "pass the merged model dir"
            )
        onnx_files: list[Path] = []
        if onnx is not None:
            op = Path(onnx)
            onnx_files = (
                [op] if op.is_file() else [p for p in sorted(op.glob("*")) if p.is_file()] if op.is_dir() else []
            )
            # packed.onnx (the multi-candidate graph of serving.export) travels beside model.onnx
            if sum(p.suffix == ".onnx" and p.name != PACKED_ONNX for p in onnx_files) != 1:
                raise DataError(
                    f"expected exactly one .onnx model at {op}",
                    "pass the .onnx file written by `serving.export.export_onnx` (or its directory)",
                )
        tdir = Path(tokenizer_dir) if tokenizer_dir is not None else None
        if onnx is not None and mdir is None and (tdir is None or not (tdir / "tokenizer.json").is_file()):
            raise DataError(
                "an ONNX-only version needs its tokenizer (a dir with tokenizer.json)", "pass --tokenizer-dir"
            )
        val = _read_json(validation, "validation")
        if val is not None and not isinstance(val.get("passed"), bool):
            raise DataError("the validation report has no boolean 'passed'", "pass the report of serving.validate")
        ev = _read_json(evaluation, "evaluation")
        metrics = evaluation_metrics(ev) if ev is not None else {}
        if ev is not None and not metrics:
            raise DataError("the evaluation report holds no numeric metrics", "pass the evaluation metrics JSON")
        ref = Path(reference_judgments) if reference_judgments is not None else None
        if ref is not None and not _is_parquet(ref):  # a KFP artifact path has no suffix: check the magic bytes
            raise DataError(
                f"reference judgments {ref} is not a parquet file", "pass the judgments the validate step wrote"
            )
        meta = dict(metadata or {})

        with self.backend.staging(model) as stage:
            if mdir is not None:
                _copy_tree(mdir, stage / MODEL_DIR)
            if onnx_files:
                (stage / ONNX_DIR).mkdir()
                for p in onnx_files:  # the graph is always onnx/model.onnx (+ model.plan, export.json, ...)
                    keep = p.suffix != ".onnx" or p.name == PACKED_ONNX
                    shutil.copy2(p, stage / ONNX_DIR / (p.name if keep else "model.onnx"))
            if tdir is not None and mdir is None:
                _copy_tree(tdir, stage / TOKENIZER_DIR, skip_weights=True)
            if val is not None:
                (stage / VALIDATION).write_text(json.dumps(val, indent=2, sort_keys=True, default=str) + "\n")
            if ev is not None:
                (stage / EVALUATION).write_text(json.dumps(ev, indent=2, sort_keys=True, default=str) + "\n")
            if evaluation_report is not None:
                shutil.copy2(evaluation_report, stage / EVALUATION_MD)
            if card is not None:
                shutil.copy2(card, stage / CARD)
            if ref is not None:
                shutil.copy2(ref, stage / REFERENCE)
            files = file_table(stage)  # hashed once; only a generated card changes per attempt
            manifest: dict[str, Any] = {
                "format": FORMAT,
                "model": model,
                "created_at": now(),
                "created_by": who(),
                "metrics": metrics,
                "validation": None
                if val is None
                else {
                    "passed": val["passed"],
                    "gates": {k: g.get("status") for k, g in (val.get("gates") or {}).items() if isinstance(g, dict)},
                },
                "has_model_dir": mdir is not None,
                "has_onnx": bool(onnx_files),
                "has_reference_judgments": ref is not None,
                "metadata": meta,
            }
            attempts = 1 if version is not None else 20
            for _ in range(attempts):
                v = version if version is not None else max(self.backend.list_versions(model), default=0) + 1
                if card is None:
                    (stage / CARD).write_text(version_card(model, v, metrics, val, files, meta))
                    files[CARD] = {"sha256": sha256_file(stage / CARD), "size": (stage / CARD).stat().st_size}
                manifest.update(version=v, files=dict(sorted(files.items())))
                try:
                    return self.backend.commit(model, v, stage, manifest)
                except ConflictError:
                    if version is not None:
                        raise
            raise ConflictError(f"could not find a free version number for {model} after {attempts} attempts", "retry")

    # -- reading -------------------------------------------------------------------------------
    def models(self) -> list[str]:
        return self.backend.list_models()

    def versions(self, model: str = DEFAULT_MODEL) -> list[int]:
        return self.backend.list_versions(check_name("model", model))

    def manifest(self, model: str, version: int) -> dict[str, Any]:
        man = self.backend.read_manifest(check_name("model", model), int(version))
        if man is None:
            known = self.versions(model)
            raise ConfigError(
                f"{model} version {version} not found in {self.uri} (versions: {', '.join(map(str, known)) or 'none'})",
                "see `seren registry list`",
            )
        return man

    def read_json(self, model: str, version: int, rel: str) -> dict[str, Any] | None:
        if rel not in self.manifest(model, version)["files"]:
            return None
        return json.loads(self.backend.read_bytes(model, version, rel))

    def read_text(self, model: str, version: int, rel: str) -> str | None:
        if rel not in self.manifest(model, version)["files"]:
            return None
        return self.backend.read_bytes(model, version, rel).decode()

    def local_copy(self, model: str, version: int, only: list[str] | None = None) -> Path:
        """A verified local directory of the version (the version itself locally; a cache for gs://)."""
        return self.backend.local_copy(check_name("model", model), int(version), only)

    def verify(self, model: str, version: int) -> None:
        """Raise IntegrityError unless every file matches its manifest hash."""
        self.local_copy(model, version)

    # -- environments ----------------------------------------------------------------------------
    def pointer(self, model: str, env: str) -> Pointer:
        return self.backend.read_pointer(check_name("model", model), check_name("environment", env))

    def swap_pointer(self, model: str, env: str, data: dict[str, Any], expected_generation: int) -> Pointer:
        return self.backend.swap_pointer(
            check_name("model", model), check_name("environment", env), data, expected_generation
        )

    def audit(self, model: str | None = None) -> list[dict[str, Any]]:
        rows = self.backend.read_audit()
        return [r for r in rows if model is None or r.get("model") == model]

    def append_audit(self, record: dict[str, Any]) -> dict[str, Any]:
        rec = {"at": now(), "who": who(), **record}
        self.backend.append_audit(rec)
        return rec

    def show(self, model: str, version: int | None = None, envs: list[str] | None = None) -> dict[str, Any]:
        """A version's manifest (default: the latest) and which environments serve it."""
        versions = self.versions(model)
        if not versions:
            raise ConfigError(f"no versions of {model!r} in {self.uri}", "register one with `seren registry register`")
        v = versions[-1] if version is None else version
        man = self.manifest(model, v)
        serving = {}
        for env in envs or []:
            ptr = self.pointer(model, env)
            if ptr.version is not None:
                serving[env] = ptr.version
        return {**man, "current_in": [e for e, pv in serving.items() if pv == v], "environments": serving}


def resolve_reference(
    environment: str, model: str = DEFAULT_MODEL, environments: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Monitoring's reference for `environment`: environment -> the version deployed there (its
    pointer) -> that version's registered reference judgments, verified against the manifest.

    Returns {source: "registry", environment, registry, model, version, path, sha256}. A validated
    version that was never deployed cannot become the reference of the one that serves.
    """
    from seren.registry.config import load_environments, registry_uri

    envs = load_environments(str(environments) if environments else None)
    env = envs.env(environment)  # unknown environment: one line naming the configured ones
    reg = Registry(registry_uri(None, envs))
    version = reg.pointer(model, env.name).version
    if version is None:
        raise ConfigError(
            f"no {model} version is deployed to environment {env.name!r} (registry {reg.uri}), so there are no "
            "reference judgments to compare with",
            f"promote one first (`seren registry promote {model} VERSION {env.name}`) or pass --reference PATH",
        )
    man = reg.manifest(model, version)
    entry = man.get("files", {}).get(REFERENCE)
    if entry is None:
        raise ConfigError(
            f"{model} v{version} deployed to {env.name!r} holds no reference judgments (registered before they "
            "travelled with versions, or validated without a dataset)",
            "promote a version registered by the training pipeline, or pass --reference PATH",
        )
    path = reg.local_copy(model, version, only=[REFERENCE]) / REFERENCE
    return {
        "source": "registry",
        "environment": env.name,
        "registry": reg.uri,
        "model": model,
        "version": int(version),
        "path": str(path),
        "sha256": entry["sha256"],
    }


def open_registry(uri: str | os.PathLike[str] | None = None) -> Registry:
    return Registry(uri)


def _is_parquet(path: Path) -> bool:
    """A parquet file starts and ends with b'PAR1' (whatever its name)."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
            f.seek(-4, os.SEEK_END)
            return head == b"PAR1" and f.read(4) == b"PAR1"
    except OSError:
        return False
