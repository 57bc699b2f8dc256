"""The gs:// backend against gcp-storage-emulator on loopback, with the real google-cloud-storage client.

What the emulator cannot show: it does NOT enforce `if_generation_match` preconditions (a stale
upload, or a second create with generation 0, both succeed there; real GCS answers 412). So here we
assert that every pointer, manifest and audit write *sends* its precondition, and the sequential
semantics (stale generation refused, by the backend's read-before-write check). Exclusion under
true concurrency is proven on the local backend only: test_store.py::test_concurrent_pointer_swaps_exactly_one_wins
and test_promote.py::test_concurrent_promotions_exactly_one_wins.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from seren.errors import ConfigError
from seren.registry import ConflictError, IntegrityError, Registry, promote

from .conftest import PASSED, seren_cli

pytestmark = pytest.mark.integration


def _record_requests(reg: Registry) -> list[tuple[str, str, dict]]:
    """Every HTTP request the storage client sends (method, path, query) - recorded, still sent for real."""
    session = reg.backend.client._http  # google.auth AuthorizedSession behind storage.Client
    seen: list[tuple[str, str, dict]] = []
    original = session.request

    def request(method, url, *args, **kwargs):  # noqa: ANN001, ANN202
        u = urlparse(url)
        seen.append(
            (method, u.path, {**parse_qs(u.query), **{k: [str(v)] for k, v in (kwargs.get("params") or {}).items()}})
        )
        return original(method, url, *args, **kwargs)

    session.request = request
    return seen


def test_register_list_show_verify_on_gcs(gs_uri: str, tiny_model_dir: Path, tiny_onnx: Path) -> None:
    reg = Registry(gs_uri)
    assert reg.uri == gs_uri and reg.versions("serengpt") == []
    m1 = reg.register(
        "serengpt", onnx=tiny_onnx, tokenizer_dir=tiny_model_dir, validation=PASSED, evaluation={"roc_auc": 0.7}
    )
    m2 = reg.register("serengpt", onnx=tiny_onnx, tokenizer_dir=tiny_model_dir)
    assert (
        (m1["version"], m2["version"]) == (1, 2) and reg.versions("serengpt") == [1, 2] and reg.models() == ["serengpt"]
    )
    assert m1["storage"].startswith("uploads/") and m1["storage"] != m2["storage"]  # each version's own prefix
    blobs = {b.name for b in reg.backend.client.list_blobs(reg.backend.bucket_name, prefix=reg.backend.prefix)}
    assert f"{reg.backend.prefix}/serengpt/versions/1/manifest.json" in blobs
    assert f"{reg.backend.prefix}/serengpt/{m1['storage']}/onnx/model.onnx" in blobs
    assert reg.show("serengpt", 1)["metrics"] == {"roc_auc": 0.7}
    assert reg.read_json("serengpt", 1, "validation.json") == PASSED
    local = reg.local_copy("serengpt", 1)  # downloaded into the cache and hash-checked
    assert (local / "onnx" / "model.onnx").read_bytes() == tiny_onnx.read_bytes()
    reg.verify("serengpt", 2)


def test_gcs_versions_are_immutable_and_tampering_is_detected(
    gs_uri: str, tiny_model_dir: Path, tiny_onnx: Path, const_onnx
) -> None:
    reg = Registry(gs_uri)
    man = reg.register("serengpt", onnx=tiny_onnx, tokenizer_dir=tiny_model_dir, version=3)
    seen = _record_requests(reg)
    with pytest.raises(ConflictError, match="already exists"):
        reg.register("serengpt", onnx=const_onnx(0.1), tokenizer_dir=tiny_model_dir, version=3)
    assert reg.manifest("serengpt", 3) == man
    # overwrite a stored file behind the registry's back: every read path notices
    reg.register(
        "serengpt", onnx=tiny_onnx, tokenizer_dir=tiny_model_dir, validation=PASSED
    )  # v4, has a validation.json
    registration = list(seen)
    man4 = reg.manifest("serengpt", 4)
    blob = reg.backend.bucket.blob(f"{reg.backend.prefix}/serengpt/{man4['storage']}/validation.json")
    blob.upload_from_string(json.dumps({"passed": True, "gates": {}, "forged": 1}))
    with pytest.raises(IntegrityError, match="validation.json"):
        reg.read_json("serengpt", 4, "validation.json")
    with pytest.raises(IntegrityError):
        reg.verify("serengpt", 4)
    # the v4 registration created its manifest and files only-if-absent
    creates = [q for m, p, q in registration if m == "POST" and "/upload/" in p]
    assert creates and all(q.get("ifGenerationMatch") == ["0"] for q in creates), creates


def test_gcs_pointer_generations_and_audit(gs_uri: str) -> None:
    reg = Registry(gs_uri)
    seen = _record_requests(reg)
    assert reg.pointer("serengpt", "staging").generation == 0
    p1 = reg.swap_pointer("serengpt", "staging", {"version": 1}, 0)
    assert p1.generation > 0 and reg.pointer("serengpt", "staging").generation == p1.generation
    with pytest.raises(ConflictError, match="changed meanwhile"):
        reg.swap_pointer("serengpt", "staging", {"version": 2}, 0)  # stale read
    p2 = reg.swap_pointer("serengpt", "staging", {"version": 2}, p1.generation)
    assert p2.generation != p1.generation and reg.pointer("serengpt", "staging").version == 2
    writes = [q for m, p, q in seen if m == "POST" and "/upload/" in p]
    assert [q.get("ifGenerationMatch") for q in writes] == [["0"], [str(p1.generation)]]
    reg.append_audit({"action": "promote", "model": "serengpt", "version": 1, "to_env": "dev", "result": "ok"})
    reg.append_audit({"action": "rollback", "model": "serengpt", "version": 1, "to_env": "dev", "result": "ok"})
    assert [r["action"] for r in reg.audit("serengpt")] == ["promote", "rollback"]


def test_promote_from_gcs_registry(
    gs_uri: str, tiny_model_dir: Path, tiny_onnx: Path, envs_file, tmp_path: Path
) -> None:
    """Promotion reads the version from gs:// (download + hash check), keeps pointer and audit there."""
    cfg = envs_file(registry=gs_uri)
    reg = Registry(gs_uri)
    v = reg.register(
        "serengpt", onnx=tiny_onnx, tokenizer_dir=tiny_model_dir, validation=PASSED, evaluation={"roc_auc": 0.7}
    )["version"]
    res = promote("serengpt", v, "dev", environments=str(cfg))
    assert res["result"] == "ok" and res["registry"] == gs_uri
    repo = tmp_path / "envs" / "dev"
    assert (repo / "scorer" / "1" / "model.onnx").read_bytes() == tiny_onnx.read_bytes()
    assert reg.pointer("serengpt", "dev").version == v and reg.audit()[-1]["result"] == "ok"
    r = seren_cli("registry", "list", "--environments", str(cfg), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["environments"] == ["dev"]


def test_gcs_errors_are_one_line(gs_uri: str, envs_file) -> None:
    missing = gs_uri.replace("seren-test", "no-such-bucket")
    with pytest.raises(ConfigError, match="not found"):
        Registry(missing).swap_pointer("serengpt", "dev", {"version": 1}, 0)
    r = seren_cli("registry", "list", "serengpt", "--registry", missing)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "Fix:" in r.stderr, r.stderr
    with pytest.raises(ConfigError, match="invalid GCS URI"):
        Registry("gs://A_bad_bucket/x")
