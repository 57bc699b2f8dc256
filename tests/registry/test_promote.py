"""Promotion through environments against a real tritonserver (started once for the module).

staging has a live Triton (the server below, explicit model control, on the staging repository);
dev and prod only get their repositories written. Each test starts from an empty staging
repository, nothing loaded and a fresh registry. "Which version serves" is always established by
querying Triton: the loaded versions in its repository index and the scores it returns.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from seren.errors import ConfigError
from seren.registry import ConflictError, DeploymentError, PromotionRefused, Registry, load_environments, promote
from seren.registry.promotion import lock_path
from seren.registry.store import file_lock
from seren.registry.triton_deploy import SMOKE_PAIRS, TritonControl, triton_versions
from serving.client import SerenClient

from .conftest import FAILED, PASSED, race, run_seren, seren_cli

pytestmark = pytest.mark.integration
PROFILES, ITEMS = [p for p, _ in SMOKE_PAIRS], [i for _, i in SMOKE_PAIRS]


@pytest.fixture(scope="module")
def staging_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from serving.triton import TritonServer

    base = tmp_path_factory.mktemp("staging_triton")
    repo = base / "model_repository"
    repo.mkdir()
    # model control is restricted: the operator shares one key between `seren serve` and `seren promote`
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEREN_TRITON_CONTROL_KEY", secrets.token_urlsafe(24))
        with TritonServer(
            repo, log_file=base / "tritonserver.log", backend_dir=base / "backends", startup_timeout=180
        ) as srv:
            yield srv


@pytest.fixture
def world(staging_triton, tmp_path: Path, envs_file, tiny_model_dir: Path):
    """A fresh registry + environments files; staging's Triton emptied and its repository wiped.

    `config` lets staging skip dev (fewer repository builds); `ordered` is dev -> staging -> prod."""
    control = TritonControl(staging_triton.http_url)
    for m in ("serengpt", "scorer", "tokenizer"):
        with contextlib.suppress(Exception):
            control.unload(m)
    for child in staging_triton.model_repo.iterdir():
        shutil.rmtree(child)
    cfg = envs_file(staging_url=staging_triton.http_url, staging_repo=staging_triton.model_repo, ordered=False)
    ordered_cfg = envs_file(
        staging_url=staging_triton.http_url, staging_repo=staging_triton.model_repo, name="ordered.yaml"
    )

    class World:
        config = cfg
        ordered = ordered_cfg
        reg = Registry(tmp_path / "registry")
        triton = staging_triton
        repo = staging_triton.model_repo

        def register(self, onnx: Path, roc_auc: float | None, validation: dict = PASSED) -> int:
            ev = {"roc_auc": roc_auc} if roc_auc is not None else None
            return self.reg.register(
                "serengpt", onnx=onnx, tokenizer_dir=tiny_model_dir, validation=validation, evaluation=ev
            )["version"]

        def promote(self, version: int, to: str, config: Path = cfg, **kw) -> dict:
            return promote("serengpt", version, to, environments=str(config), **kw)

        def serving(self) -> tuple[list[int], np.ndarray]:
            """(loaded ensemble versions, scores of the smoke texts) as Triton answers now."""
            with SerenClient(staging_triton.http_url, retries=0) as client:
                return control.loaded_versions("serengpt"), client.score(PROFILES, ITEMS)

        def audit(self) -> list[dict]:
            return self.reg.audit("serengpt")

    return World()


@pytest.fixture(scope="module")
def tiny_scores(tiny_onnx: Path, tiny_model_dir: Path) -> np.ndarray:
    """What the real tiny scorer gives the smoke texts in-process (ONNX Runtime)."""
    from seren.llm.scorer import SerenScorer

    return SerenScorer.from_pretrained(tiny_model_dir).score(PROFILES, ITEMS)  # torch, the model itself


def test_promote_dev_to_staging_serves_the_version(world, tiny_onnx: Path, tiny_scores: np.ndarray) -> None:
    v1 = world.register(tiny_onnx, 0.70)
    with pytest.raises(PromotionRefused, match="never been deployed to dev"):
        world.promote(v1, "staging", world.ordered)  # environments are passed in order
    dev = world.promote(v1, "dev", world.ordered)
    assert dev["result"] == "ok" and dev["deployment"]["verification"].startswith("none")
    res = world.promote(v1, "staging", world.ordered)
    assert res["result"] == "ok" and res["triton_version"] == 1 and res["previous_version"] is None
    assert res["deployment"]["verification"] == "live" and res["deployment"]["smoke"]["max_abs_diff"] <= 1e-3
    loaded, scores = world.serving()
    assert loaded == [1]
    np.testing.assert_allclose(scores, tiny_scores, atol=1e-4)
    ptr = world.reg.pointer("serengpt", "staging")
    assert ptr.version == v1 and ptr.data["triton_version"] == 1
    last = world.audit()[-1]
    assert (last["action"], last["version"], last["from_env"], last["to_env"], last["result"]) == (
        "promote",
        v1,
        "dev",
        "staging",
        "ok",
    )
    assert last["who"] and last["at"]
    refused = [r for r in world.audit() if r["result"] == "refused"]
    assert len(refused) == 1 and refused[0]["checks"]["requires"]["passed"] is False


def test_champion_challenger_refusal_and_force(world, tiny_onnx: Path, const_onnx, tiny_scores: np.ndarray) -> None:
    v1 = world.register(tiny_onnx, 0.70)
    world.promote(v1, "staging")
    worse = world.register(const_onnx(0.9), 0.65)  # 0.05 below the champion, tolerance 0.01
    with pytest.raises(PromotionRefused, match=r"roc_auc 0.6500 vs champion v1 0.7000"):
        world.promote(worse, "staging")
    loaded, scores = world.serving()
    assert loaded == [1]
    np.testing.assert_allclose(scores, tiny_scores, atol=1e-4)  # the champion still serves
    assert world.reg.pointer("serengpt", "staging").version == v1
    with pytest.raises(ConfigError, match="--force needs a --reason"):
        world.promote(worse, "staging", force=True)
    res = world.promote(worse, "staging", force=True, reason="known-better on fresh labels")
    assert res["forced"] and res["overridden"] == ["champion_challenger"] and res["triton_version"] == 2
    loaded, scores = world.serving()
    assert loaded == [2]
    np.testing.assert_allclose(scores, 0.9, atol=1e-6)
    last = world.audit()[-1]
    assert last["result"] == "ok" and last["forced"] and last["reason"] == "known-better on fresh labels"
    assert last["previous_version"] == v1
    # within tolerance is not worse
    close = world.register(const_onnx(0.3), 0.645)
    assert world.promote(close, "staging")["checks"]["champion_challenger"]["passed"]


def test_failed_deployments_roll_back(
    world, tiny_onnx: Path, const_onnx, tmp_path: Path, tiny_scores: np.ndarray
) -> None:
    """Two versions that break only when served (validation reports faked as passed): one loads but
    returns NaN, one cannot be loaded. Each is removed again; v1 keeps serving, the pointer stays."""
    v1 = world.register(tiny_onnx, 0.70)
    world.promote(v1, "staging")
    broken = world.register(const_onnx(float("nan")), 0.80)
    with pytest.raises(DeploymentError, match=r"rolled back \(v1 keeps serving\).*invalid scores"):
        world.promote(broken, "staging")
    loaded, scores = world.serving()
    assert loaded == [1]
    np.testing.assert_allclose(scores, tiny_scores, atol=1e-4)
    assert triton_versions(world.repo) == [1]  # the failed Triton version 2 is gone
    assert world.reg.pointer("serengpt", "staging").version == v1
    last = world.audit()[-1]
    assert last["result"] == "failed" and last["version"] == broken and last["triton_version"] == 2
    assert last["rolled_back"]["serving_triton_version"] == 1

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07 this is not a protobuf graph" * 10)
    bad = world.register(corrupt, 0.80)
    # Triton may keep the old scorer and report the ensemble load as fine: the loaded-version check catches it
    with pytest.raises(
        DeploymentError,
        match=r"rolled back \(v1 keeps serving\): Triton (serves scorer versions \[1\]|.*failed to load)",
    ):
        world.promote(bad, "staging")
    loaded, scores = world.serving()
    assert loaded == [1] and triton_versions(world.repo) == [1]
    np.testing.assert_allclose(scores, tiny_scores, atol=1e-4)
    assert world.reg.pointer("serengpt", "staging").version == v1 and world.audit()[-1]["result"] == "failed"


def test_unreachable_triton_changes_nothing(world, tiny_onnx: Path, envs_file, tmp_path: Path) -> None:
    from serving.triton import free_port

    dead = envs_file(
        staging_url=f"127.0.0.1:{free_port()}", staging_repo=tmp_path / "dead_repo", ordered=False, name="dead.yaml"
    )
    v1 = world.register(tiny_onnx, 0.70)
    r = seren_cli("promote", "serengpt", "--version", str(v1), "--to", "staging", "--environments", str(dead))
    assert r.returncode != 0 and "unreachable" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert triton_versions(tmp_path / "dead_repo") == [] and world.reg.pointer("serengpt", "staging").version is None
    assert world.audit()[-1]["result"] == "failed"


def test_validation_failure_is_not_overridable(world, tiny_onnx: Path) -> None:
    v = world.register(tiny_onnx, 0.9, validation=FAILED)
    for kw in ({}, {"force": True, "reason": "please"}):
        with pytest.raises(PromotionRefused, match="validation failed gates"):
            world.promote(v, "dev", **kw)
    assert world.reg.pointer("serengpt", "dev").version is None
    assert [r["result"] for r in world.audit()] == ["refused", "refused"]


def test_rollback_restores_previous_version(world, tiny_onnx: Path, const_onnx, tiny_scores: np.ndarray) -> None:
    v1 = world.register(tiny_onnx, 0.70)
    world.promote(v1, "staging")
    v2 = world.register(const_onnx(0.25), 0.75)
    world.promote(v2, "staging")
    assert world.serving()[0] == [2]
    # through the CLI, as an operator would
    r = seren_cli(
        "promote",
        "serengpt",
        "--rollback",
        "--env",
        "staging",
        "--reason",
        "bad clicks",
        "--environments",
        str(world.config),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["action"] == "rollback" and res["version"] == v1 and res["previous_version"] == v2
    loaded, scores = world.serving()
    assert loaded == [3]  # v1 redeployed as a new Triton version
    np.testing.assert_allclose(scores, tiny_scores, atol=1e-4)
    ptr = world.reg.pointer("serengpt", "staging")
    assert ptr.version == v1 and ptr.data["history"] == []
    assert sorted(triton_versions(world.repo)) == [2, 3]  # keep_triton_versions=2 pruned version 1
    r = seren_cli("promote", "serengpt", "--rollback", "--env", "staging", "--environments", str(world.config))
    assert r.returncode != 0 and "has no predecessor" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert world.audit()[-1]["reason"] == "bad clicks"


def test_concurrent_promotions_exactly_one_wins(world, tiny_onnx: Path, const_onnx, tmp_path: Path) -> None:
    """Two processes promote different versions to staging at the same moment (local backend)."""
    v1 = world.register(tiny_onnx, 0.70)
    world.promote(v1, "staging")
    a, b = world.register(const_onnx(0.2), 0.71), world.register(const_onnx(0.8), 0.72)
    cfg = str(world.config)
    outs = race(tmp_path, [["promote", cfg, "serengpt", str(v), "staging"] for v in (a, b)])
    results = sorted(o["result"] for o in outs)
    assert results == ["ConflictError", "ok"], outs
    win, lose = (outs[0], outs[1]) if outs[0]["result"] == "ok" else (outs[1], outs[0])
    assert lose["t0"] < win["t1"] and win["t0"] < lose["t1"]  # the attempts really overlapped
    winner = a if win is outs[0] else b
    loaded, scores = world.serving()
    assert loaded == [2] and world.reg.pointer("serengpt", "staging").version == winner
    np.testing.assert_allclose(scores, 0.2 if winner == a else 0.8, atol=1e-6)
    assert [r["result"] for r in world.audit()[-2:]].count("conflict") == 1


def test_promote_cli(world, tiny_onnx: Path) -> None:
    v1 = world.register(tiny_onnx, 0.70)
    cfg = str(world.config)
    r = run_seren("promote", "serengpt", "--version", str(v1), "--to", "dev", "--environments", cfg)
    assert r.returncode == 0, r.stderr
    assert "promoted serengpt v1 to dev" in r.stdout
    for args, needle in [
        (["--version", "1", "--to", "qa"], "unknown environment 'qa'"),
        (["--version", "9", "--to", "staging"], "version 9 not found"),
        (["--to", "staging"], "needs --version and --to"),
        (["--version", "1", "--to", "staging", "--force"], "--force needs a --reason"),
        (["--rollback", "--env", "staging", "--version", "1"], "--rollback takes --env"),
        (["--version", "1", "--to", "dev"], "already current in dev"),
    ]:
        r = seren_cli("promote", "serengpt", *args, "--environments", cfg)
        assert r.returncode != 0 and needle in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Fix:" in r.stderr
    # while another promotion holds the environment's lock, a promotion fails at once (and is audited)
    env = load_environments(cfg).env("dev")
    with file_lock(lock_path(env), blocking=False):
        with pytest.raises(ConflictError, match="another promotion to dev is in progress"):
            world.promote(v1, "dev", force=True, reason="redeploy")
    assert world.audit()[-1]["result"] == "conflict"
    assert world.promote(v1, "dev", force=True, reason="redeploy")["triton_version"] == 2
