"""Promote a registered version into an environment's Triton, or roll an environment back.

One promotion, in order, holding the environment's lock (fcntl, non-blocking: a second concurrent
promotion to the same environment fails at once):

1. checks: validation report passed (never overridable); the version has been in the environment
   this one `requires`; champion/challenger on the evaluation metric against the environment's
   current version (not worse beyond the tolerance). The last two yield to ``force`` + a reason.
2. deploy (seren/registry/triton_deploy.py): the version's ONNX + tokenizer become a new Triton version number in the environment's
   model repository (serving.model_repository.build_model_repository); with a live Triton URL the
   ensemble is (re)loaded through the model-control API (which reloads its tokenizer and scorer),
   Triton must then report exactly the new version READY for all three (it can keep an old scorer
   serving when the new one fails to load), and a smoke inference must match ONNX Runtime in-process. Without a
   URL, ``verify: local-triton`` does the same against a temporary tritonserver on the repository.
3. commit: the environment's pointer is compare-and-swapped from the generation read in step 1.

Any failure in 2-3 removes the new Triton version and reloads, so the previous version keeps
serving and the pointer never moves. Every attempt (promoted, refused, failed, conflict) is appended
to the audit log. The new version serves for the seconds between its load and a failed smoke test;
the rollback is what bounds that window.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from seren.errors import ConfigError, SerenError
from seren.registry.config import Environment, EnvironmentsConfig, load_environments, registry_uri
from seren.registry.registry import DEFAULT_MODEL, MODEL_DIR, ONNX_DIR, TOKENIZER_DIR, Registry, now, who
from seren.registry.store import ConflictError, Pointer, file_lock
from seren.registry.triton_deploy import (
    HISTORY_KEPT,
    DeploymentError,
    TritonControl,
    deploy_version,
    prune_versions,
    remove_version,
    restore_serving,
    triton_versions,
)


class PromotionRefused(SerenError):
    """A promotion check failed; nothing was deployed."""


def lock_path(env: Environment) -> Path:
    repo = Path(env.model_repository)
    return repo.parent / f".{repo.name}.promote.lock"


# ---------------------------------------------------------------------------------------- promotion


def _check_champion(reg: Registry, cfg: EnvironmentsConfig, model: str, man: dict, champion: int | None) -> dict:
    p = cfg.promotion
    chk: dict[str, Any] = {"metric": p.metric, "tolerance": p.tolerance, "higher_is_better": p.higher_is_better}
    chk["challenger"] = man.get("metrics", {}).get(p.metric)
    chk["champion_version"] = champion
    if champion is None:
        return {**chk, "passed": True, "detail": "no champion: first version in this environment"}
    chk["champion"] = reg.manifest(model, champion).get("metrics", {}).get(p.metric)
    if chk["challenger"] is None:
        return {**chk, "passed": False, "detail": f"the candidate has no {p.metric} in its evaluation report"}
    if chk["champion"] is None:
        return {**chk, "passed": True, "detail": f"the champion has no {p.metric}; nothing to compare"}
    gain = chk["challenger"] - chk["champion"] if p.higher_is_better else chk["champion"] - chk["challenger"]
    chk["gain"] = gain
    ok = gain >= -p.tolerance
    detail = (
        f"{p.metric} {chk['challenger']:.4f} vs champion v{champion} {chk['champion']:.4f} "
        f"({'+' if gain >= 0 else ''}{gain:.4f}, tolerance {p.tolerance})"
    )
    return {**chk, "passed": bool(ok), "detail": detail}


class _Attempt:
    """Context for one promotion/rollback: the audit record it ends with."""

    def __init__(self, reg: Registry, record: dict[str, Any]) -> None:
        self.reg = reg
        self.record = record

    def finish(self, result: str, detail: str = "", **extra: Any) -> dict[str, Any]:
        self.record.update(result=result, detail=detail, **extra)
        return self.reg.append_audit(self.record)


def _setup(
    registry: str | None, environments: str | None, config: EnvironmentsConfig | None, to: str
) -> tuple[EnvironmentsConfig, Environment, Registry]:
    cfg = config or load_environments(environments)
    env = cfg.env(to)
    return cfg, env, Registry(registry_uri(registry, cfg))


def _run_locked(
    cfg: EnvironmentsConfig,
    env: Environment,
    reg: Registry,
    attempt: _Attempt,
    model: str,
    version: int,
    ptr: Pointer,
    history: list[dict],
) -> dict[str, Any]:
    """Deploy `version` and swap the pointer from `ptr`; roll back + audit on any failure."""
    man = reg.manifest(model, version)
    try:
        if not man.get("has_onnx"):
            raise PromotionRefused(f"{model} v{version} has no ONNX export", "register it with an ONNX export (--onnx)")
        only = [ONNX_DIR, TOKENIZER_DIR] + [
            r for r in man["files"] if r.startswith(f"{MODEL_DIR}/") and not r.endswith((".safetensors", ".bin"))
        ]
        vdir = reg.local_copy(model, version, only=only)  # hash-checked: what is deployed is what was registered
    except SerenError as exc:
        attempt.finish("refused", exc.problem)
        raise
    repo = Path(env.model_repository)
    n = max(triton_versions(repo), default=0) + 1
    try:
        info = deploy_version(env, vdir, n, cfg.promotion.smoke_tolerance)
    except Exception as exc:
        problem = exc.problem if isinstance(exc, SerenError) else f"{type(exc).__name__}: {exc}"
        fix = exc.fix if isinstance(exc, SerenError) else "see the Triton log and the model repository"
        attempt.finish("failed", problem, triton_version=n, rolled_back=getattr(exc, "rollback", True))
        kept = f" (v{ptr.version} keeps serving)" if ptr.version else ""
        raise DeploymentError(
            f"promotion of {model} v{version} to {env.name} failed and was rolled back{kept}: {problem}", fix
        ) from None
    data = {
        "model": model,
        "env": env.name,
        "version": version,
        "triton_version": n,
        "updated_at": now(),
        "updated_by": who(),
        "history": history[-HISTORY_KEPT:],
    }
    try:
        new_ptr = reg.swap_pointer(model, env.name, data, ptr.generation)
    except ConflictError as exc:
        remove_version(repo, n)
        restored = restore_serving(TritonControl(env.triton_url), repo) if env.triton_url else None
        attempt.finish("conflict", exc.problem, triton_version=n, rolled_back=restored or True)
        raise
    pruned = prune_versions(repo, cfg.promotion.keep_triton_versions)
    rec = attempt.finish("ok", "", triton_version=n)
    return {
        **{k: v for k, v in rec.items() if k not in ("result", "detail")},
        "result": "ok",
        "deployment": info,
        "pointer_generation": new_ptr.generation,
        "pruned_triton_versions": pruned,
    }


def _enter_lock(stack: contextlib.ExitStack, env: Environment, attempt: _Attempt) -> None:
    try:
        stack.enter_context(file_lock(lock_path(env), blocking=False))
    except ConflictError as exc:
        attempt.finish("conflict", exc.problem)
        raise ConflictError(
            f"another promotion to {env.name} is in progress ({exc.problem})",
            "wait for it to finish; two promotions to one environment never run at once",
        ) from None


def promote(
    model: str = DEFAULT_MODEL,
    version: int | None = None,
    to: str = "staging",
    *,
    force: bool = False,
    reason: str = "",
    registry: str | None = None,
    environments: str | None = None,
    config: EnvironmentsConfig | None = None,
) -> dict[str, Any]:
    """Promote `model` v`version` into environment `to`; returns the audit record + deployment info.

    Raises PromotionRefused (checks), DeploymentError (rolled back), ConflictError (lost a race).
    """
    if version is None or isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(
            f"a version to promote is required (got {version!r})", "pass --version N (see `seren registry list`)"
        )
    if force and not reason.strip():
        raise ConfigError("--force needs a --reason", 'say why, e.g. --reason "hotfix for drifted labels"')
    cfg, env, reg = _setup(registry, environments, config, to)
    man = reg.manifest(model, version)  # unknown version: plain bad input, nothing to audit
    attempt = _Attempt(
        reg,
        {
            "action": "promote",
            "model": model,
            "version": version,
            "from_env": env.requires,
            "to_env": env.name,
            "reason": reason,
            "forced": force,
            "registry": reg.uri,
        },
    )
    with contextlib.ExitStack() as stack:
        _enter_lock(stack, env, attempt)
        ptr = reg.pointer(model, env.name)
        attempt.record["previous_version"] = ptr.version
        checks: dict[str, Any] = {}
        val = man.get("validation")
        checks["validation"] = {
            "passed": bool(val and val.get("passed")),
            "detail": "no validation report"
            if not val
            else ("passed" if val.get("passed") else f"failed gates: {val.get('gates')}"),
        }
        if env.requires:
            req = reg.pointer(model, env.requires)
            seen = {req.version} | {h.get("version") for h in req.data.get("history", [])}
            checks["requires"] = {
                "passed": version in seen,
                "detail": f"v{version} {'has' if version in seen else 'has never'} been deployed to {env.requires}",
            }
        if ptr.version == version:
            checks["not_current"] = {"passed": False, "detail": f"v{version} is already current in {env.name}"}
        else:
            checks["champion_challenger"] = _check_champion(reg, cfg, model, man, ptr.version)
        attempt.record["checks"] = checks
        if not checks["validation"]["passed"]:
            attempt.finish("refused", checks["validation"]["detail"])
            raise PromotionRefused(
                f"{model} v{version} cannot be promoted: validation {checks['validation']['detail']}",
                "only versions whose validation report passed can be promoted (not overridable)",
            )
        failed = [k for k, c in checks.items() if not c["passed"]]
        if failed and not force:
            detail = "; ".join(checks[k]["detail"] for k in failed)
            attempt.finish("refused", detail)
            raise PromotionRefused(
                f"refused to promote {model} v{version} to {env.name}: {detail}",
                "promote a better version, or override with --force --reason '...'",
            )
        attempt.record["overridden"] = failed
        history = ptr.data.get("history", []) + (
            [
                {
                    "version": ptr.version,
                    "triton_version": ptr.data.get("triton_version"),
                    "at": ptr.data.get("updated_at"),
                }
            ]
            if ptr.version is not None
            else []
        )
        return _run_locked(cfg, env, reg, attempt, model, version, ptr, history)
    raise AssertionError("unreachable")  # pragma: no cover


def rollback(
    model: str = DEFAULT_MODEL,
    env_name: str = "staging",
    *,
    reason: str = "",
    registry: str | None = None,
    environments: str | None = None,
    config: EnvironmentsConfig | None = None,
) -> dict[str, Any]:
    """Put the environment's previous version back (deployed as a new Triton version; checks skipped)."""
    cfg, env, reg = _setup(registry, environments, config, env_name)
    attempt = _Attempt(
        reg,
        {
            "action": "rollback",
            "model": model,
            "to_env": env.name,
            "reason": reason or "rollback",
            "forced": False,
            "registry": reg.uri,
        },
    )
    ptr = reg.pointer(model, env.name)  # nothing to roll back: refuse before the lock creates envs/<env>
    if ptr.version is None or not ptr.data.get("history"):
        what = "nothing is deployed" if ptr.version is None else f"v{ptr.version} has no predecessor"
        raise ConfigError(f"cannot roll back {model} in {env.name}: {what}", "promote a version first")
    with contextlib.ExitStack() as stack:
        _enter_lock(stack, env, attempt)
        ptr = reg.pointer(model, env.name)
        history = list(ptr.data.get("history", []))
        if ptr.version is None or not history:
            what = "nothing is deployed" if ptr.version is None else f"v{ptr.version} has no predecessor"
            raise ConfigError(f"cannot roll back {model} in {env.name}: {what}", "promote a version first")
        target = int(history[-1]["version"])
        attempt.record.update(version=target, previous_version=ptr.version, from_env=env.name)
        return _run_locked(cfg, env, reg, attempt, model, target, ptr, history[:-1])
    raise AssertionError("unreachable")  # pragma: no cover


def deploy(
    model: str,
    version: int,
    env: str = "dev",
    *,
    reason: str = "pipeline deploy",
    registry: str | None = None,
    environments: str | None = None,
) -> dict[str, Any]:
    """Promote into `env` for a pipeline step: a champion/challenger refusal is an outcome, not an error."""
    try:
        return {
            **promote(model, version, env, reason=reason, registry=registry, environments=environments),
            "deployed": True,
        }
    except PromotionRefused as exc:
        return {
            "model": model,
            "version": version,
            "to_env": env,
            "result": "refused",
            "detail": exc.problem,
            "deployed": False,
        }
