"""Issue 16 (1): a registry is not trusted to name local files, and one damaged record must not take
the rest down. Manifest keys that are absolute or leave the version/cache directory (`..`, a symlink)
are refused before anything is read or written; corrupt manifests, pointers and audit logs give one
line naming the file; a torn last audit line is skipped on read and cut before the next append."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from seren.errors import DataError
from seren.registry import Registry, promote
from seren.registry.store import LocalBackend

from .conftest import PASSED, seren_cli

BAD_KEYS = ["../../x", "/abs/path"]


def _register(reg: Registry, tiny_model_dir: Path, const_onnx) -> dict:  # noqa: ANN001
    return reg.register(
        "serengpt", onnx=const_onnx(0.5), tokenizer_dir=tiny_model_dir, validation=PASSED, evaluation={"roc_auc": 0.7}
    )


def _bad_key(key: str, tmp_path: Path) -> str:
    return str(tmp_path / "abs-target") if key.startswith("/") else key


def _files_outside(root: Path, allowed: list[Path]) -> set[str]:
    return {str(p) for p in root.rglob("*") if p.is_file() and not any(a == p or a in p.parents for a in allowed)}


@pytest.mark.integration
@pytest.mark.parametrize("key", BAD_KEYS)
def test_gcs_manifest_with_escaping_key_writes_nothing_outside_the_cache(
    key: str, gs_uri: str, tiny_model_dir: Path, const_onnx, tmp_path: Path, envs_file
) -> None:
    """A manifest edited in the bucket to list `../../x` or an absolute path (with a blob behind it):
    verify, download and promote refuse with one line and write no file anywhere outside the cache."""
    reg = Registry(gs_uri)
    man = _register(reg, tiny_model_dir, const_onnx)
    bad = _bad_key(key, tmp_path)
    be = reg.backend
    if key.startswith("/"):  # a payload behind the key (the emulator drops uploads whose name holds '..')
        be.bucket.blob(be._key("serengpt", man["storage"], bad.lstrip("/"))).upload_from_string(b"pwned")
    forged = dict(man, files={**man["files"], bad: {"sha256": "0" * 64, "size": 5}})
    be.bucket.blob(be._key("serengpt", "versions", "1", "manifest.json")).upload_from_string(json.dumps(forged))
    home = Path(os.environ["SEREN_HOME"])
    before = _files_outside(tmp_path, []) | _files_outside(home, [])

    with pytest.raises(DataError, match="unsafe file path") as err:
        reg.verify("serengpt", 1)
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)
    with pytest.raises(DataError, match="unsafe file path"):
        reg.local_copy("serengpt", 1, only=["onnx"])
    r = seren_cli("registry", "verify", "serengpt", "--version", "1", "--registry", gs_uri)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "unsafe file path" in r.stderr, r.stderr
    with pytest.raises(DataError, match="unsafe file path"):
        promote("serengpt", 1, "dev", environments=str(envs_file(registry=gs_uri)))

    assert not (tmp_path / "abs-target").exists()
    after = _files_outside(tmp_path, []) | _files_outside(home, [])
    new = after - before
    # only the environments file and the registry's own lock files may appear; no 'x', no payload
    assert not [p for p in new if Path(p).name == "x" or Path(p).read_bytes() == b"pwned"], new


@pytest.mark.parametrize("key", BAD_KEYS)
def test_local_manifest_with_escaping_key_is_refused(
    key: str, tmp_path: Path, tiny_model_dir: Path, const_onnx
) -> None:
    reg = Registry(tmp_path / "registry")
    _register(reg, tiny_model_dir, const_onnx)
    mpath = tmp_path / "registry" / "serengpt" / "versions" / "1" / "manifest.json"
    man = json.loads(mpath.read_text())
    bad = _bad_key(key, tmp_path)
    Path(tmp_path / "abs-target").write_bytes(b"secret")  # a real file the key points at
    man["files"][bad] = {"sha256": "0" * 64, "size": 6}
    mpath.chmod(stat.S_IRUSR | stat.S_IWUSR)
    mpath.write_text(json.dumps(man))
    with pytest.raises(DataError, match="unsafe file path") as err:
        reg.verify("serengpt", 1)
    assert str(mpath) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataError, match="unsafe file path"):
        reg.backend.read_bytes("serengpt", 1, bad)


def test_symlink_out_of_a_local_version_is_refused(tmp_path: Path, tiny_model_dir: Path, const_onnx) -> None:
    """A version file replaced by a symlink to an identical file outside the version: refused, not followed."""
    reg = Registry(tmp_path / "registry")
    man = _register(reg, tiny_model_dir, const_onnx)
    vdir = tmp_path / "registry" / "serengpt" / "versions" / "1"
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((vdir / "onnx" / "model.onnx").read_bytes())
    (vdir / "onnx").chmod(0o755)
    (vdir / "onnx" / "model.onnx").unlink()
    (vdir / "onnx" / "model.onnx").symlink_to(outside)
    assert "onnx/model.onnx" in man["files"]
    with pytest.raises(DataError, match="outside") as err:
        reg.verify("serengpt", 1)
    assert "onnx/model.onnx" in str(err.value) and "\n" not in str(err.value)


def test_corrupt_manifest_and_pointer_are_one_line_and_list_skips_the_bad_version(
    tmp_path: Path, tiny_model_dir: Path, const_onnx, envs_file
) -> None:
    root = tmp_path / "registry"
    reg = Registry(root)
    _register(reg, tiny_model_dir, const_onnx)
    _register(reg, tiny_model_dir, const_onnx)
    m2 = root / "serengpt" / "versions" / "2" / "manifest.json"
    m2.chmod(stat.S_IRUSR | stat.S_IWUSR)
    m2.write_text('{"format": 1, "files": {')  # truncated
    with pytest.raises(DataError, match="corrupt") as err:
        reg.manifest("serengpt", 2)
    assert str(m2) in str(err.value) and "\n" not in str(err.value)

    cfg = envs_file(registry=root)
    r = seren_cli("registry", "list", "--environments", str(cfg), "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["version"] for row in rows] == [1, 2]
    assert rows[0]["roc_auc"] == 0.7 and "error" not in rows[0]
    assert str(m2) in rows[1]["error"]
    assert "warning: serengpt v2 skipped" in r.stderr

    ptr = root / "serengpt" / "envs" / "dev.json"
    ptr.parent.mkdir(parents=True, exist_ok=True)
    ptr.write_text("{not json")
    with pytest.raises(DataError, match="corrupt") as err:
        reg.pointer("serengpt", "dev")
    assert str(ptr) in str(err.value) and "\n" not in str(err.value)
    r = seren_cli("registry", "list", "--environments", str(cfg))
    assert r.returncode == 0 and "dev pointer unreadable" in r.stderr, r.stderr
    assert len([ln for ln in r.stdout.splitlines() if ln.startswith("serengpt")]) == 2


def test_audit_log_torn_last_line_is_skipped_then_cut_and_corrupt_line_is_named(tmp_path: Path) -> None:
    be = LocalBackend(tmp_path / "registry")
    be.append_audit({"action": "promote", "n": 1})
    path = tmp_path / "registry" / "audit.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"action": "promote", "n": 2, "detai')  # a writer killed mid-append
    assert [r["n"] for r in be.read_audit()] == [1]
    be.append_audit({"action": "rollback", "n": 3})
    lines = path.read_text().splitlines()
    assert [json.loads(ln)["n"] for ln in lines] == [1, 3] and path.read_text().endswith("\n")

    path.write_text(lines[0] + "\ngarbage\n" + lines[1] + "\n")
    with pytest.raises(DataError, match="line 2 is corrupt") as err:
        be.read_audit()
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_served_weights_are_copies_and_a_flipped_byte_is_refused_not_served(
    tmp_path: Path, tiny_model_dir: Path, const_onnx, envs_file
) -> None:
    """Issue 16 (3): an environment's repository holds its own copy of the registry's ONNX (damaging it
    leaves the version intact), and weights that no longer match the recorded scorer_sha256 are refused
    before Triton reads them (start with --load-model, the launcher's load, a promotion's load)."""
    from serving.model_repository import verify_repository
    from serving.triton import TritonServer

    reg = Registry(tmp_path / "registry")
    _register(reg, tiny_model_dir, const_onnx)
    promote("serengpt", 1, "dev", environments=str(envs_file(registry=tmp_path / "registry")))
    repo = tmp_path / "envs" / "dev"
    served = repo / "scorer" / "1" / "model.onnx"
    stored = tmp_path / "registry" / "serengpt" / "versions" / "1" / "onnx" / "model.onnx"
    assert served.read_bytes() == stored.read_bytes()
    assert served.stat().st_nlink == 1 and served.stat().st_ino != stored.stat().st_ino
    assert verify_repository(repo) == 1

    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0x01
    served.write_bytes(bytes(data))
    reg.verify("serengpt", 1)  # the registry version is untouched
    with pytest.raises(DataError, match=r"scorer/1/model.onnx does not match the scorer_sha256") as err:
        verify_repository(repo, ["serengpt"])
    assert "\n" not in err.value.line() and "Fix:" in err.value.line()
    server = TritonServer(repo, models=["serengpt"], log_file=tmp_path / "log.txt")
    with pytest.raises(DataError, match="refusing to load"):
        server.start()
    assert server.proc is None and not (tmp_path / "log.txt").exists()  # never started
    with pytest.raises(DataError, match="refusing to load"):
        TritonServer(repo).load("serengpt")  # refused before any request is sent
    (repo / "serengpt" / "1" / "manifest.json").unlink()
    with pytest.raises(DataError, match="no recorded hash"):
        verify_repository(repo)
