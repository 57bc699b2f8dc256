"""The registry's gs://bucket/prefix backend (the same guarantees as the local one, see
seren/registry/store.py): files go to a unique upload prefix, then the manifest is created with
``if_generation_match=0``; pointers are compare-and-swapped on their generation; the audit log is
one object per record."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seren.errors import ConfigError, DataError
from seren.gcs import gcs_client, gcs_errors
from seren.io import atomic_dir
from seren.locks import ConflictError
from seren.paths import registry_cache_dir, tmp_dir
from seren.registry.store import (
    MANIFEST,
    TAMPERED_FIX,
    Backend,
    IntegrityError,
    Pointer,
    check_manifest,
    check_rel,
    confined,
    parse_json,
    selected,
    sha256_file,
    verify_files,
)

_STORAGE_RE = re.compile(r"^uploads/[0-9a-f]{8,64}$")


class GCSBackend(Backend):
    """gs://bucket/prefix/<model>/versions/<v>/manifest.json -> files under <model>/uploads/<id>/;
    <model>/envs/<env>.json; audit/<time>-<id>.json."""

    def __init__(self, uri: str, client: Any | None = None) -> None:
        m = re.match(r"^gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(?:/(.*))?$", uri.strip())
        if not m:
            raise ConfigError(f"invalid GCS URI {uri!r}", "use gs://BUCKET or gs://BUCKET/PREFIX")
        self.bucket_name = m.group(1)
        self.prefix = (m.group(2) or "").strip("/")
        self.uri = f"gs://{self.bucket_name}" + (f"/{self.prefix}" if self.prefix else "")
        self.client = client or gcs_client()
        self.bucket = self.client.bucket(self.bucket_name)

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _err(self, what: str):  # noqa: ANN202
        return gcs_errors(what, self.uri)

    def list_models(self) -> list[str]:
        with self._err("list models"):
            it = self.client.list_blobs(
                self.bucket_name, prefix=self._key("") + ("/" if self.prefix else ""), delimiter="/"
            )
            list(it)
            names = [p.rstrip("/").rsplit("/", 1)[-1] for p in it.prefixes]
        return sorted(n for n in names if n != "audit" and self.list_versions(n))

    def list_versions(self, model: str) -> list[int]:
        base = self._key(model, "versions") + "/"
        with self._err(f"list versions of {model}"):
            names = [b.name for b in self.client.list_blobs(self.bucket_name, prefix=base)]
        out = []
        for n in names:
            rest = n[len(base) :].split("/")
            if len(rest) == 2 and rest[0].isdigit() and rest[1] == MANIFEST:
                out.append(int(rest[0]))
        return sorted(out)

    @contextlib.contextmanager
    def staging(self, model: str) -> Iterator[Path]:
        base = tmp_dir()
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="gcs-stage-", dir=base))
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def commit(self, model: str, version: int, staged: Path, manifest: dict[str, Any]) -> dict[str, Any]:
        from google.api_core.exceptions import PreconditionFailed

        mkey = self._key(model, "versions", str(version), MANIFEST)
        with self._err(f"register {model} v{version}"):
            if self.bucket.blob(mkey).exists():  # cheap early exit; the precondition below is what guarantees it
                raise ConflictError(
                    f"{model} version {version} already exists in {self.uri}",
                    "versions are immutable: register under a new version (omit --version to auto-increment)",
                )
            upload = manifest.get("storage") or f"uploads/{uuid.uuid4().hex}"
            manifest = dict(manifest, storage=upload)
            for p in sorted(staged.rglob("*")):
                if p.is_file():
                    rel = p.relative_to(staged).as_posix()
                    blob = self.bucket.blob(self._key(model, upload, rel))
                    blob.upload_from_filename(str(p), if_generation_match=0)
            try:
                self.bucket.blob(mkey).upload_from_string(
                    json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                    content_type="application/json",
                    if_generation_match=0,
                )
            except PreconditionFailed:
                self._delete_prefix(self._key(model, upload) + "/")
                raise ConflictError(
                    f"{model} version {version} was registered concurrently in {self.uri}",
                    "register again (auto-increment picks the next number)",
                ) from None
        return manifest

    def _delete_prefix(self, prefix: str) -> None:
        with contextlib.suppress(Exception):
            for b in self.client.list_blobs(self.bucket_name, prefix=prefix):
                b.delete()

    def read_manifest(self, model: str, version: int) -> dict[str, Any] | None:
        with self._err(f"read {model} v{version}"):
            key = self._key(model, "versions", str(version), MANIFEST)
            blob = self.bucket.get_blob(key)
            if blob is None:
                return None
            raw = blob.download_as_bytes()
        where = f"gs://{self.bucket_name}/{key}"
        man = check_manifest(parse_json(raw, where), where)
        if not isinstance(man.get("storage"), str) or not _STORAGE_RE.match(man["storage"]):
            raise DataError(f"{where}: bad storage prefix {str(man.get('storage'))[:80]!r}", TAMPERED_FIX)
        return man

    def read_bytes(self, model: str, version: int, rel: str) -> bytes:
        man = self.read_manifest(model, version)
        if man is None:
            raise ConfigError(f"{model} version {version} not found in {self.uri}", "see `seren registry list`")
        check_rel(rel, f"{self.uri} {model} v{version}")
        with self._err(f"read {rel} of {model} v{version}"):
            data = self.bucket.blob(self._key(model, man["storage"], rel)).download_as_bytes()
        meta = man["files"].get(rel)
        if meta is not None and hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise IntegrityError(
                f"{self.uri} {model} v{version}: {rel} does not match its manifest hash",
                "the stored version was modified; register the model again as a new version",
            )
        return data

    def cache_dir(self, model: str, version: int) -> Path:
        tag = hashlib.sha1(self.uri.encode()).hexdigest()[:12]
        return registry_cache_dir() / tag / model / str(version)

    def local_copy(self, model: str, version: int, only: list[str] | None = None) -> Path:
        """Download into <home>/registry_cache (once); every use re-verifies the hashes."""
        man = self.read_manifest(model, version)
        if man is None:
            raise ConfigError(f"{model} version {version} not found in {self.uri}", "see `seren registry list`")
        dest = self.cache_dir(model, version)
        try:
            verify_files(dest, man["files"], only)
            return dest
        except IntegrityError:
            pass
        where = f"{self.uri} {model} v{version}"
        with self._err(f"download {model} v{version}"), atomic_dir(dest) as tmp:
            # keep what an earlier, narrower download already fetched and verified
            have = [r for r in man["files"] if dest.is_dir() and confined(dest, r, where).is_file()]
            for rel in man["files"]:
                out = confined(tmp, rel, where)  # every key resolved inside the fresh directory first
                out.parent.mkdir(parents=True, exist_ok=True)
                if rel in have and sha256_file(dest / rel) == man["files"][rel]["sha256"]:
                    shutil.copy2(dest / rel, out)
                elif rel in selected(man["files"], only):
                    self.bucket.blob(self._key(model, man["storage"], rel)).download_to_filename(str(out))
            (tmp / MANIFEST).write_text(json.dumps(man, indent=2, sort_keys=True) + "\n")
            verify_files(tmp, man["files"], only, where=f"{self.uri} {model} v{version}")
        return dest

    def _pointer_key(self, model: str, env: str) -> str:
        return self._key(model, "envs", f"{env}.json")

    def read_pointer(self, model: str, env: str) -> Pointer:
        with self._err(f"read the {env} pointer of {model}"):
            blob = self.bucket.get_blob(self._pointer_key(model, env))
            if blob is None:
                return Pointer({}, 0)
            gen = int(blob.generation)
            # download pinned to the generation we report, so data and generation belong together
            raw = blob.download_as_bytes(if_generation_match=gen)
        return Pointer(parse_json(raw, f"gs://{self.bucket_name}/{self._pointer_key(model, env)}"), gen)

    def swap_pointer(self, model: str, env: str, data: dict[str, Any], expected_generation: int) -> Pointer:
        from google.api_core.exceptions import PreconditionFailed

        conflict = ConflictError(
            f"the {env} pointer of {model} changed meanwhile (expected generation {expected_generation}): "
            "another promotion won",
            "check `seren registry show` and retry if still wanted",
        )
        if self.read_pointer(model, env).generation != expected_generation:
            raise conflict  # early check; the generation precondition below is the guarantee on real GCS
        blob = self.bucket.blob(self._pointer_key(model, env))
        body = json.dumps(dict(data), indent=2, sort_keys=True) + "\n"
        try:
            with self._err(f"update the {env} pointer of {model}"):
                blob.upload_from_string(body, content_type="application/json", if_generation_match=expected_generation)
        except PreconditionFailed:
            raise conflict from None
        return Pointer(dict(data), int(blob.generation or 0))

    def append_audit(self, record: dict[str, Any]) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        key = self._key("audit", f"{stamp}-{uuid.uuid4().hex[:8]}.json")
        with self._err("append to the audit log"):
            self.bucket.blob(key).upload_from_string(
                json.dumps(record, sort_keys=True, default=str), content_type="application/json", if_generation_match=0
            )

    def read_audit(self) -> list[dict[str, Any]]:
        with self._err("read the audit log"):
            blobs = sorted(
                self.client.list_blobs(self.bucket_name, prefix=self._key("audit") + "/"), key=lambda b: b.name
            )
            raws = [(b.name, b.download_as_bytes()) for b in blobs]
        out = []
        for name, raw in raws:  # one object per record, created whole: a bad one is corrupt, not torn
            out.append(parse_json(raw, f"gs://{self.bucket_name}/{name}"))
        return out
