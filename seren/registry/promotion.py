"""Promote a registered version into an environment's Triton, or roll an environment back.

One promotion, in order, holding the environment's lock (fcntl, non-blocking: a second concurrent
promotion to the same environment fails at once):

1. checks: validation report passed (never overridable); the version has been in the environment
   this one `requires`; champion/challenger on the evaluation metric against the environment's
   current version (not worse beyond the tolerance). The last two yield to ``force`` + a reason.
2. deploy: the version's ONNX + tokenizer become a new Triton version number in the environment's
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
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from seren.errors import ConfigError, SerenError, ServiceError
from seren.registry.config import Environment, EnvironmentsConfig, load_environments, registry_uri
from seren.registry.registry import DEFAULT_MODEL, MODEL_DIR, ONNX_DIR, TOKENIZER_DIR, Registry, now, who
from seren.registry.store import ConflictError, Pointer, file_lock
from serving.triton import TritonControl as _TritonControl

TRITON_MODELS = ("tokenizer", "scorer", "serengpt")  # the ensemble last
ENSEMBLE = "serengpt"
# The multi-candidate ensemble (serving.model_repository writes it when the export has packed.onnx).
PACKED_MODELS = ("packer", "packed_scorer", "serengpt_packed")
HISTORY_KEPT = 20
# Fixed smoke texts: plain, unicode + newline, a very short pair.
SMOKE_PAIRS = [
    ("Reads science fiction and listens to jazz.", "A cookbook of coastal soups"),
    ("Hikes on weekends\nTop categories: Books/Nature, Music/Folk — café reviews", "Guide to birds of the coast"),
    ("x", "y"),
]


class PromotionRefused(SerenError):
    """A promotion check failed; nothing was deployed."""


class DeploymentError(ServiceError):
    """Loading or smoke-testing the new version failed; it was rolled back."""


# ------------------------------------------------------------------------------------------ Triton


class TritonControl(_TritonControl):
    """serving.triton.TritonControl (the one model-control client; sends the control key) raising
    DeploymentError, so a failed load rolls the promotion back."""

    error = DeploymentError
    failed = "failed to"


# --------------------------------------------------------------------------------------- repository


def triton_versions(repo: Path) -> list[int]:
    """Version numbers present for the ensemble in a model repository."""
    d = repo / ENSEMBLE
    return sorted(int(p.name) for p in d.iterdir() if p.is_dir() and p.name.isdigit()) if d.is_dir() else []


def _remove_version(repo: Path, n: int) -> None:
    for m in TRITON_MODELS + PACKED_MODELS:
        shutil.rmtree(repo / m / str(n), ignore_errors=True)


def _prune(repo: Path, keep: int) -> list[int]:
    versions = triton_versions(repo)
    old = versions[:-keep] if keep < len(versions) else []
    for n in old:
        _remove_version(repo, n)
    return old


def lock_path(env: Environment) -> Path:
    repo = Path(env.model_repository)
    return repo.parent / f".{repo.name}.promote.lock"


def reference_scores(onnx_path: Path, tokenizer_dir: Path, profiles: list[str], items: list[str]) -> np.ndarray:
    """The graph's scores in-process: seren's prompt format, left padding (as SerenScorer.encode), ONNX Runtime.

    Built independently of the Triton tokenizer model on purpose: the smoke test compares the two paths.
    """
    import onnxruntime as ort
    from transformers import AutoTokenizer

    from seren.llm.prompts import build_prompt

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    enc = tok(
        [build_prompt(tok, p, i) for p, i in zip(profiles, items, strict=True)], padding=True, return_tensors="np"
    )
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)}
    return np.asarray(sess.run(["score"], feed)[0], dtype=np.float32).reshape(-1)


def smoke_test(url: str, onnx_path: Path, tokenizer_dir: Path, tolerance: float) -> dict[str, Any]:
    """Score SMOKE_PAIRS through Triton's `serengpt`; they must be finite and match ONNX Runtime in-process."""
    from serving.client import SerenClient

    profiles, items = [p for p, _ in SMOKE_PAIRS], [i for _, i in SMOKE_PAIRS]
    ref = reference_scores(onnx_path, tokenizer_dir, profiles, items)
    try:
        with SerenClient(url, retries=1, timeout=120.0) as client:
            client.check_model()
            got = client.score(profiles, items)
    except SerenError as exc:
        raise DeploymentError(f"smoke inference failed: {exc.problem}", "see the Triton log") from None
    out = {"n": len(items), "scores": [float(x) for x in got], "reference": [float(x) for x in ref]}
    if not np.all(np.isfinite(got)) or np.any((got < 0) | (got > 1)):
        raise DeploymentError(f"smoke inference returned invalid scores {out['scores']}", "check the exported model")
    diff = float(np.max(np.abs(got - ref))) if np.all(np.isfinite(ref)) else float("inf")
    out["max_abs_diff"] = diff
    if diff > tolerance:
        raise DeploymentError(
            f"smoke inference differs from ONNX Runtime in-process by {diff:.3g} (> {tolerance})",
            "the served repository does not match the registered version",
        )
    return out


def _local_triton_available() -> str | None:
    """None when a local tritonserver can be started here, else why not."""
    try:
        from serving.triton import pytriton_server_dir

        pytriton_server_dir()
    except SerenError as exc:
        return exc.problem
    return None


def _load_and_check(
    control: TritonControl, n: int, onnx: Path, tok: Path, tolerance: float, repo: Path
) -> dict[str, Any]:
    from serving.model_repository import verify_repository

    verify_repository(repo)  # the weights Triton is about to read (per-pair and packed) are the recorded ones
    control.load(ENSEMBLE)  # (re)loads the composing tokenizer and scorer too; checked below
    packed = (repo / PACKED_MODELS[-1] / str(n)).is_dir()
    if packed:
        verify_repository(repo, [PACKED_MODELS[-1]])
        control.load(PACKED_MODELS[-1])
    for m in TRITON_MODELS + (PACKED_MODELS if packed else ()):
        loaded = control.loaded_versions(m)
        if loaded != [n]:
            raise DeploymentError(
                f"Triton serves {m} versions {loaded} after loading, expected [{n}]", "see the Triton log"
            )
    return smoke_test(control.url, onnx, tok, tolerance)


def _restore(control: TritonControl, repo: Path) -> dict[str, Any]:
    """After removing a failed version: reload what is left (or unload when nothing is)."""
    left = triton_versions(repo)
    if left:
        from serving.model_repository import verify_repository

        verify_repository(repo)
        control.load(ENSEMBLE)
        return {"serving_triton_version": left[-1], "ready": control.ready(ENSEMBLE)}
    with contextlib.suppress(DeploymentError):
        control.unload(ENSEMBLE)
        for m in ("scorer", "tokenizer"):
            control.unload(m)
    return {"serving_triton_version": None}


def deploy_version(env: Environment, vdir: Path, n: int, smoke_tolerance: float) -> dict[str, Any]:
    """Write Triton version `n` of the registry version in `vdir` into env's repository, load, smoke-test.

    On any failure version `n` is removed and the server reloaded before the error propagates.
    """
    from serving.model_repository import build_model_repository

    repo = Path(env.model_repository)
    onnx = vdir / ONNX_DIR / "model.onnx"
    tok = vdir / MODEL_DIR if (vdir / MODEL_DIR / "tokenizer.json").is_file() else vdir / TOKENIZER_DIR
    engine = vdir / ONNX_DIR / "model.plan"
    info: dict[str, Any] = {"model_repository": str(repo), "triton_version": n, "target": env.target}
    t0 = time.perf_counter()
    try:
        build_model_repository(
            onnx, tok, repo, target=env.target, version=n, engine_path=engine if engine.is_file() else None
        )
    except BaseException:
        _remove_version(repo, n)
        raise
    if env.triton_url:
        control = TritonControl(env.triton_url)
        try:
            info["smoke"] = _load_and_check(control, n, onnx, tok, smoke_tolerance, repo)
        except BaseException as exc:
            _remove_version(repo, n)
            try:
                info["restored"] = _restore(control, repo)
            except SerenError as exc2:
                info["restored"] = {"error": exc2.problem}
            if isinstance(exc, SerenError):
                exc.rollback = info["restored"]  # type: ignore[attr-defined]
            raise
        info["served_by"] = env.triton_url
        info["verification"] = "live"
    elif env.verify == "local-triton":
        why_not = _local_triton_available()
        if why_not:
            info["verification"] = f"skipped: no local Triton ({why_not})"
        else:
            from seren.paths import triton_logs_dir
            from serving.triton import TritonServer

            log = triton_logs_dir() / f"verify-{env.name}-{n}.log"
            try:
                with TritonServer(repo, log_file=log, startup_timeout=120) as server:
                    info["smoke"] = _load_and_check(
                        TritonControl(server.http_url, key=server.control_key), n, onnx, tok, smoke_tolerance, repo
                    )
            except BaseException:
                _remove_version(repo, n)
                raise
            info["verification"] = f"local-triton (temporary server, log {log})"
        info["served_by"] = None
    else:
        info["verification"] = "none (repository written only)"
        info["served_by"] = None
    info["deploy_s"] = round(time.perf_counter() - t0, 2)
    return info


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
        _remove_version(repo, n)
        restored = _restore(TritonControl(env.triton_url), repo) if env.triton_url else None
        attempt.finish("conflict", exc.problem, triton_version=n, rolled_back=restored or True)
        raise
    pruned = _prune(repo, cfg.promotion.keep_triton_versions)
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
