"""Deploy a registered version into an environment's Triton (promotion's step 2), or restore it.

The version's ONNX + tokenizer become a new Triton version number in the environment's model
repository; with a live Triton URL the ensemble is (re)loaded through the model-control API
(serving.triton.TritonControl) and must report exactly the new version READY and pass a smoke
inference that matches ONNX Runtime in-process; `restore_serving` puts the previous state back.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from seren.errors import SerenError, ServiceError
from seren.registry.config import Environment
from seren.registry.registry import MODEL_DIR, ONNX_DIR, TOKENIZER_DIR
from serving.triton_control import TritonControl as _TritonControl

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


def remove_version(repo: Path, n: int) -> None:
    for m in TRITON_MODELS + PACKED_MODELS:
        shutil.rmtree(repo / m / str(n), ignore_errors=True)


def prune_versions(repo: Path, keep: int) -> list[int]:
    versions = triton_versions(repo)
    old = versions[:-keep] if keep < len(versions) else []
    for n in old:
        remove_version(repo, n)
    return old


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


def restore_serving(control: TritonControl, repo: Path) -> dict[str, Any]:
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
        remove_version(repo, n)
        raise
    if env.triton_url:
        control = TritonControl(env.triton_url)
        try:
            info["smoke"] = _load_and_check(control, n, onnx, tok, smoke_tolerance, repo)
        except BaseException as exc:
            remove_version(repo, n)
            try:
                info["restored"] = restore_serving(control, repo)
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
                remove_version(repo, n)
                raise
            info["verification"] = f"local-triton (temporary server, log {log})"
        info["served_by"] = None
    else:
        info["verification"] = "none (repository written only)"
        info["served_by"] = None
    info["deploy_s"] = round(time.perf_counter() - t0, 2)
    return info
