"""Local registry: register/list/show, auto-increment, immutability, integrity, pointers, audit,
exclusion across processes, and the `seren registry` CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from seren.errors import ConfigError, DataError
from seren.registry import ConflictError, IntegrityError, Registry
from seren.registry.store import sha256_file

from .conftest import FAILED, PASSED, race, run_seren, seren_cli


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry")


def test_register_list_show(reg: Registry, tiny_model_dir: Path, tiny_onnx: Path) -> None:
    man = reg.register(
        "serengpt",
        model_dir=tiny_model_dir,
        onnx=tiny_onnx,
        validation=PASSED,
        evaluation={"metrics": {"roc_auc": 0.71, "ece": 0.05}},
        metadata={"base_model": "tiny"},
    )
    assert man["version"] == 1 and reg.versions("serengpt") == [1] and reg.models() == ["serengpt"]
    files = man["files"]
    for rel in (
        "model/config.json",
        "model/tokenizer.json",
        "onnx/model.onnx",
        "model_card.md",
        "validation.json",
        "evaluation.json",
    ):
        assert rel in files, rel
    vdir = reg.local_copy("serengpt", 1)
    # hashes in the manifest are those of the stored bytes, and equal the sources'
    assert files["onnx/model.onnx"]["sha256"] == sha256_file(tiny_onnx) == sha256_file(vdir / "onnx/model.onnx")
    assert man["metrics"] == {"roc_auc": 0.71, "ece": 0.05} and man["validation"]["passed"] is True
    card = reg.read_text("serengpt", 1, "model_card.md")
    assert "# serengpt v1" in card and "| roc_auc | 0.7100 |" in card and "base_model: tiny" in card
    assert reg.read_json("serengpt", 1, "validation.json") == PASSED
    shown = reg.show("serengpt", envs=["dev"])
    assert shown["version"] == 1 and shown["current_in"] == []


def test_auto_increment_and_explicit_versions(reg: Registry, tiny_model_dir: Path, tiny_onnx: Path) -> None:
    v1 = reg.register("serengpt", onnx=tiny_onnx, tokenizer_dir=tiny_model_dir)["version"]
    v5 = reg.register("serengpt", onnx=tiny_onnx, tokenizer_dir=tiny_model_dir, version=5)["version"]
    v6 = reg.register("serengpt", onnx=tiny_onnx, tokenizer_dir=tiny_model_dir)["version"]
    assert (v1, v5, v6) == (1, 5, 6) and reg.versions("serengpt") == [1, 5, 6]
    # ONNX-only versions carry just the tokenizer, never weights
    files = reg.manifest("serengpt", 1)["files"]
    assert "tokenizer/tokenizer.json" in files and not any(f.endswith(".safetensors") for f in files)


def test_versions_are_immutable(reg: Registry, tiny_model_dir: Path, tiny_onnx: Path, const_onnx) -> None:
    reg.register("serengpt", onnx=tiny_onnx, tokenizer_dir=tiny_model_dir, validation=PASSED, version=1)
    before = reg.manifest("serengpt", 1)
    with pytest.raises(ConflictError, match="already exists"):
        reg.register("serengpt", onnx=const_onnx(0.5), tokenizer_dir=tiny_model_dir, validation=FAILED, version=1)
    assert reg.manifest("serengpt", 1) == before
    reg.verify("serengpt", 1)  # the stored bytes are still the first registration's
    vdir = reg.local_copy("serengpt", 1)
    onnx = vdir / "onnx" / "model.onnx"
    assert not os.access(onnx, os.W_OK) or os.geteuid() == 0  # read-only (root ignores modes)
    assert not (onnx.stat().st_mode & 0o222)
    # no staging leftovers after the refused registration
    assert not any((reg.backend.root / "serengpt" / ".staging").iterdir())


def test_tampering_is_detected(reg: Registry, tiny_model_dir: Path, tiny_onnx: Path) -> None:
    reg.register("serengpt", onnx=tiny_onnx, tokenizer_dir=tiny_model_dir)
    target = reg.backend.root / "serengpt" / "versions" / "1" / "onnx" / "model.onnx"
    target.chmod(0o644)
    with open(target, "r+b") as fh:  # flip one byte
        fh.seek(100)
        b = fh.read(1)
        fh.seek(100)
        fh.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(IntegrityError, match="onnx/model.onnx"):
        reg.verify("serengpt", 1)
    # a check limited to other files still passes; the deployment path checks what it deploys
    reg.local_copy("serengpt", 1, only=["tokenizer"])


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({}, ConfigError, "nothing to register"),
        ({"onnx": "MISSING"}, DataError, "exactly one .onnx"),
        ({"onnx": "ONNX"}, DataError, "needs its tokenizer"),
        ({"onnx": "ONNX", "tokenizer_dir": "TOK", "validation": {"gates": {}}}, DataError, "boolean 'passed'"),
        ({"onnx": "ONNX", "tokenizer_dir": "TOK", "evaluation": {"note": "x"}}, DataError, "no numeric metrics"),
        ({"onnx": "ONNX", "tokenizer_dir": "TOK", "version": 0}, ConfigError, "positive integer"),
        ({"model_dir": "ONNX"}, DataError, "not a Hugging Face model directory"),
    ],
)
def test_bad_registrations_write_nothing(
    reg: Registry, tiny_model_dir: Path, tiny_onnx: Path, tmp_path: Path, kwargs, err, match
) -> None:
    subst = {"ONNX": tiny_onnx, "TOK": tiny_model_dir, "MISSING": tmp_path / "nope.onnx"}
    kwargs = {k: subst.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(err, match=match):
        reg.register("serengpt", **kwargs)
    assert reg.versions("serengpt") == []
    with pytest.raises(ConfigError, match="invalid model name"):
        reg.register("Bad Name", onnx=tiny_onnx, tokenizer_dir=tiny_model_dir)


def test_ablation_json_is_flattened(reg: Registry, tiny_model_dir: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    """The evaluate step's ablation.json (rows per scorer) registers as the aligned model's metrics."""
    ablation = {
        "order": ["popularity", "SFT+alignment"],
        "rows": {"popularity": {"roc_auc": 0.55}, "SFT+alignment": {"roc_auc": 0.74, "hit@1": 0.5}},
        "n_candidates": 40,
        "n_users": 5,
    }
    d = tmp_path / "results"
    d.mkdir()
    (d / "ablation.json").write_text(json.dumps(ablation))
    man = reg.register("serengpt", onnx=tiny_onnx, tokenizer_dir=tiny_model_dir, evaluation=d)
    assert man["metrics"]["roc_auc"] == 0.74 and man["metrics"]["popularity.roc_auc"] == 0.55
    assert man["metrics"]["hit@1"] == 0.5


def test_pointer_compare_and_swap(reg: Registry) -> None:
    assert reg.pointer("serengpt", "dev").generation == 0
    p1 = reg.swap_pointer("serengpt", "dev", {"version": 1}, 0)
    assert p1.generation == 1 and reg.pointer("serengpt", "dev").version == 1
    with pytest.raises(ConflictError, match="changed meanwhile"):
        reg.swap_pointer("serengpt", "dev", {"version": 2}, 0)  # stale read
    assert reg.pointer("serengpt", "dev").version == 1


def test_concurrent_pointer_swaps_exactly_one_wins(reg: Registry, tmp_path: Path) -> None:
    """Four processes read generation 0 and swap at once: the fcntl lock + generation check let one win."""
    outs = race(tmp_path, [["swap", reg.uri, "serengpt", "staging", "0", f"w{i}"] for i in range(4)])
    assert sorted(o["result"] for o in outs) == ["ConflictError"] * 3 + ["ok"]
    ptr = reg.pointer("serengpt", "staging")
    assert ptr.generation == 1 and ptr.data["version"] == 1


def test_concurrent_registrations_get_distinct_versions(
    reg: Registry, tmp_path: Path, tiny_model_dir: Path, tiny_onnx: Path
) -> None:
    outs = race(tmp_path, [["register", reg.uri, "serengpt", str(tiny_onnx), str(tiny_model_dir)]] * 3)
    assert all(o["result"] == "ok" for o in outs)
    assert sorted(o["version"] for o in outs) == [1, 2, 3] == reg.versions("serengpt")
    for v in (1, 2, 3):
        reg.verify("serengpt", v)


def test_audit_is_append_only_jsonl(reg: Registry) -> None:
    reg.append_audit({"action": "promote", "model": "serengpt", "version": 1, "to_env": "dev", "result": "ok"})
    reg.append_audit({"action": "promote", "model": "other", "version": 1, "to_env": "dev", "result": "refused"})
    lines = (reg.backend.root / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["result"] == "ok"
    rows = reg.audit("serengpt")
    assert len(rows) == 1 and rows[0]["who"] and rows[0]["at"]


def test_registry_cli(tmp_path: Path, tiny_model_dir: Path, tiny_onnx: Path, envs_file) -> None:
    cfg = envs_file()
    val = tmp_path / "validation.json"
    val.write_text(json.dumps(PASSED))
    ev = tmp_path / "evaluation.json"
    ev.write_text(json.dumps({"roc_auc": 0.66}))
    common = ["--environments", str(cfg)]
    r = run_seren("registry", "register", "serengpt", "--onnx", str(tiny_onnx), "--tokenizer-dir", str(tiny_model_dir),
                  "--validation", str(val), "--evaluation", str(ev), "--meta", "run=abc", "--json", *common)  # fmt: skip
    assert r.returncode == 0, r.stderr
    man = json.loads(r.stdout)
    assert man["version"] == 1 and man["metadata"] == {"run": "abc"} and man["registry"] == str(tmp_path / "registry")

    r = seren_cli("registry", "list", "--json", *common)
    rows = json.loads(r.stdout)
    assert r.returncode == 0 and rows == [
        {"model": "serengpt", "version": 1, "created_at": man["created_at"], "created_by": man["created_by"],
         "roc_auc": 0.66, "validation_passed": True, "environments": []}
    ]  # fmt: skip
    r = seren_cli("registry", "show", "serengpt", *common)
    assert r.returncode == 0 and "serengpt v1" in r.stdout and "onnx/model.onnx" in r.stdout
    r = seren_cli("registry", "show", "serengpt", "--card", *common)
    assert r.stdout.startswith("# serengpt v1")
    r = seren_cli("registry", "verify", "serengpt", "--version", "1", *common)
    assert r.returncode == 0 and "files match" in r.stdout
    r = seren_cli("registry", "envs", "--json", *common)
    assert [e["env"] for e in json.loads(r.stdout)] == ["dev", "staging", "prod"]

    # bad input: one line naming problem and fix, non-zero exit, nothing registered
    for args, needle in [
        (["registry", "show", "serengpt", "--version", "7"], "version 7 not found"),
        (["registry", "register", "serengpt", "--onnx", str(tmp_path / "x.onnx")], "does not exist"),
        (
            [
                "registry",
                "register",
                "serengpt",
                "--onnx",
                str(tiny_onnx),
                "--tokenizer-dir",
                str(tiny_model_dir),
                "--version",
                "1",
            ],
            "already exists",
        ),
        (["registry", "register", "serengpt", "--meta", "novalue"], "KEY=VALUE"),
        (["registry", "list", "--registry", "s3://bucket/x"], "unsupported registry URI"),
    ]:
        r = seren_cli(*args, *common)
        assert r.returncode != 0 and needle in r.stderr, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Fix:" in lines[0], r.stderr
    assert json.loads(seren_cli("registry", "list", "--json", *common).stdout)[0]["version"] == 1
    assert len(json.loads(seren_cli("registry", "list", "--json", *common).stdout)) == 1
