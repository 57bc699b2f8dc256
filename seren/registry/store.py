"""Storage backends of the registry: the contract, its checks, and the local directory (default);
gs://bucket/prefix is seren/registry/store_gcs.py.

Both give the same guarantees, by the means each medium offers:

- a version becomes visible only when its manifest is committed, and never changes afterwards
  (local: the complete version directory is staged beside its final place and renamed in, which
  fails if the version exists; files are made read-only. GCS: files go to a unique upload prefix,
  then the manifest is created with ``if_generation_match=0``, which real GCS refuses when it
  exists);
- environment pointers are compare-and-swapped (local: under an fcntl lock, temp file + rename;
  GCS: ``if_generation_match`` on the pointer object);
- the audit log is append-only (local: one JSONL file appended under a lock; GCS: one object per
  record, created with ``if_generation_match=0``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seren.errors import ConfigError, DataError
from seren.io import atomic_path
from seren.locks import ConflictError, file_lock  # noqa: F401 - also imported from here by older callers

MANIFEST = "manifest.json"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
TAMPERED_FIX = "the registry was tampered with or damaged: do not use this version; register the model again"
log = logging.getLogger(__name__)


class IntegrityError(DataError):
    """A stored file does not match the hash its manifest recorded."""


@dataclass(frozen=True)
class Pointer:
    """An environment's current version record plus the generation it was read at (0 = absent)."""

    data: dict[str, Any]
    generation: int

    @property
    def version(self) -> int | None:
        v = self.data.get("version")
        return int(v) if v is not None else None


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"invalid {kind} name {name!r}", "use lowercase letters, digits, '-' or '_' (max 64)")
    return name


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_table(root: Path) -> dict[str, dict[str, Any]]:
    """{relative posix path: {sha256, size}} of every regular file under root (manifest excluded)."""
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            out[p.relative_to(root).as_posix()] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    return out


def selected(files: dict[str, Any], only: list[str] | None) -> list[str]:
    """The manifest paths equal to, or under, one of `only` (all when None)."""
    if only is None:
        return list(files)
    return [r for r in files if any(r == o or r.startswith(o.rstrip("/") + "/") for o in only)]


def check_rel(rel: Any, where: str = "") -> str:
    """A manifest file key must be a plain relative path inside its version: no absolute path, no
    '..', no empty or '.' part, no backslash or NUL (a bucket is not trusted to name local files)."""
    ok = isinstance(rel, str) and rel and "\\" not in rel and "\x00" not in rel and not rel.startswith("/")
    parts = rel.split("/") if ok else []
    if not ok or any(p in ("", ".", "..") for p in parts):
        raise DataError(
            f"{where + ': ' if where else ''}unsafe file path {str(rel)[:120]!r} in the manifest "
            "(absolute or leaving the version directory)",
            TAMPERED_FIX,
        )
    return rel


def confined(root: Path, rel: str, where: str = "") -> Path:
    """root/rel, refused unless it stays under root once resolved (catches '..' and symlinks out)."""
    check_rel(rel, where)
    base = Path(root).resolve()
    target = (base / rel).resolve()
    if target == base or base not in target.parents:
        raise DataError(
            f"{where + ': ' if where else ''}file {rel!r} resolves to {target}, outside {base} (a symlink?)",
            TAMPERED_FIX,
        )
    return target


def check_manifest(man: Any, where: str) -> dict[str, Any]:
    """The shape every reader relies on: a JSON object whose `files` map safe paths to {sha256, size}."""
    if not isinstance(man, dict) or not isinstance(man.get("files"), dict):
        raise DataError(f"{where} is not a registry manifest (no 'files' object)", TAMPERED_FIX)
    for rel, meta in man["files"].items():
        check_rel(rel, where)
        if (
            not isinstance(meta, dict)
            or not isinstance(meta.get("sha256"), str)
            or not _SHA_RE.match(meta["sha256"])
            or not isinstance(meta.get("size"), int)
            or isinstance(meta.get("size"), bool)
        ):
            raise DataError(f"{where}: entry {rel!r} has no valid sha256/size", TAMPERED_FIX)
    return man


def parse_json(raw: bytes | str, where: str) -> dict[str, Any]:
    """A JSON object, or a one-line error naming the file."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = getattr(exc, "msg", type(exc).__name__)
        raise DataError(f"{where} is corrupt (not JSON: {msg})", TAMPERED_FIX) from None
    if not isinstance(data, dict):
        raise DataError(f"{where} is corrupt (not a JSON object)", TAMPERED_FIX)
    return data


def verify_files(root: Path, files: dict[str, dict[str, Any]], only: list[str] | None = None, where: str = "") -> None:
    """Raise IntegrityError unless each (selected) file exists with the recorded size and sha256.

    Every key is confined to `root` first (DataError otherwise): nothing outside is read."""
    for rel in selected(files, only):
        meta = files[rel]
        p = confined(root, rel, where or str(root))
        if not p.is_file() or p.stat().st_size != meta["size"] or sha256_file(p) != meta["sha256"]:
            raise IntegrityError(
                f"{where or root}: {rel} is missing or does not match its manifest hash",
                "the stored version was modified; register the model again as a new version",
            )


class Backend(ABC):
    """What the registry needs from a storage medium."""

    uri: str

    @abstractmethod
    def list_models(self) -> list[str]: ...

    @abstractmethod
    def list_versions(self, model: str) -> list[int]: ...

    @abstractmethod
    @contextlib.contextmanager
    def staging(self, model: str) -> Iterator[Path]:
        """A fresh local directory to assemble a version in (removed afterwards if not committed)."""

    @abstractmethod
    def commit(self, model: str, version: int, staged: Path, manifest: dict[str, Any]) -> dict[str, Any]:
        """Publish `staged` as `version` with `manifest`; returns the committed manifest; ConflictError if the version exists."""

    @abstractmethod
    def read_manifest(self, model: str, version: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def read_bytes(self, model: str, version: int, rel: str) -> bytes: ...

    @abstractmethod
    def local_copy(self, model: str, version: int, only: list[str] | None = None) -> Path:
        """A local directory holding the version's (selected) files, verified against the manifest."""

    @abstractmethod
    def read_pointer(self, model: str, env: str) -> Pointer: ...

    @abstractmethod
    def swap_pointer(self, model: str, env: str, data: dict[str, Any], expected_generation: int) -> Pointer:
        """Write `data` if the pointer is still at `expected_generation`; ConflictError otherwise."""

    @abstractmethod
    def append_audit(self, record: dict[str, Any]) -> None: ...

    @abstractmethod
    def read_audit(self) -> list[dict[str, Any]]: ...


# ------------------------------------------------------------------------------------------- local


def _make_read_only(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


class LocalBackend(Backend):
    """<root>/<model>/versions/<v>/ (files + manifest.json), <root>/<model>/envs/<env>.json, <root>/audit.jsonl."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"registry path {self.root} is not a directory", "point --registry at a directory")

    def _vdir(self, model: str, version: int) -> Path:
        return self.root / model / "versions" / str(version)

    def list_models(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and (p / "versions").is_dir())

    def list_versions(self, model: str) -> list[int]:
        vroot = self.root / model / "versions"
        if not vroot.is_dir():
            return []
        return sorted(int(p.name) for p in vroot.iterdir() if p.name.isdigit() and (p / MANIFEST).is_file())

    @contextlib.contextmanager
    def staging(self, model: str) -> Iterator[Path]:
        base = self.root / model / ".staging"
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{uuid.uuid4().hex[:8]}-", dir=base))
        try:
            yield tmp
        finally:
            if tmp.exists():
                for p in tmp.rglob("*"):  # committed-then-failed leftovers may be read-only
                    with contextlib.suppress(OSError):
                        p.chmod(p.stat().st_mode | stat.S_IWUSR)
                shutil.rmtree(tmp, ignore_errors=True)

    def commit(self, model: str, version: int, staged: Path, manifest: dict[str, Any]) -> dict[str, Any]:
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _make_read_only(staged)
        target = self._vdir(model, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staged, target)  # atomic; refuses an existing (non-empty) version directory
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                for p in staged.rglob("*"):
                    if p.is_file():
                        p.chmod(p.stat().st_mode | stat.S_IWUSR)
                raise ConflictError(
                    f"{model} version {version} already exists in {self.uri}",
                    "versions are immutable: register under a new version (omit --version to auto-increment)",
                ) from None
            raise
        return manifest

    def read_manifest(self, model: str, version: int) -> dict[str, Any] | None:
        p = self._vdir(model, version) / MANIFEST
        if not p.is_file():
            return None
        return check_manifest(parse_json(p.read_bytes(), str(p)), str(p))

    def read_bytes(self, model: str, version: int, rel: str) -> bytes:
        return confined(self._vdir(model, version), rel, f"{self.uri} {model} v{version}").read_bytes()

    def local_copy(self, model: str, version: int, only: list[str] | None = None) -> Path:
        man = self.read_manifest(model, version)
        if man is None:
            raise ConfigError(f"{model} version {version} not found in {self.uri}", "see `seren registry list`")
        vdir = self._vdir(model, version)
        verify_files(vdir, man["files"], only, where=f"{self.uri} {model} v{version}")
        return vdir

    # pointers: a JSON file per (model, env) replaced atomically under an exclusive lock
    def _pointer_path(self, model: str, env: str) -> Path:
        return self.root / model / "envs" / f"{env}.json"

    def read_pointer(self, model: str, env: str) -> Pointer:
        p = self._pointer_path(model, env)
        if not p.is_file():
            return Pointer({}, 0)
        data = parse_json(p.read_bytes(), str(p))
        gen = data.get("generation", 0)
        if not isinstance(gen, int) or isinstance(gen, bool) or gen < 0:
            raise DataError(f"{p} is corrupt (bad generation {gen!r})", TAMPERED_FIX)
        return Pointer(data, gen)

    def swap_pointer(self, model: str, env: str, data: dict[str, Any], expected_generation: int) -> Pointer:
        p = self._pointer_path(model, env)
        with file_lock(p.with_name(f".{env}.lock")):
            current = self.read_pointer(model, env)
            if current.generation != expected_generation:
                raise ConflictError(
                    f"the {env} pointer of {model} changed meanwhile (generation {current.generation}, "
                    f"expected {expected_generation}): another promotion won",
                    "check `seren registry show` and retry if still wanted",
                )
            new = dict(data, generation=expected_generation + 1)
            with atomic_path(p, suffix=".json") as tmp:
                tmp.write_text(json.dumps(new, indent=2, sort_keys=True) + "\n")
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
        return Pointer(new, expected_generation + 1)

    def append_audit(self, record: dict[str, Any]) -> None:
        """One JSON line. A torn last line (a writer killed mid-append; its caller never saw success)
        is cut off first, so the new record starts on a line of its own and the log stays parseable."""
        path = self.root / "audit.jsonl"
        with file_lock(self.root / ".audit.lock"):
            with open(path, "a+b") as fh:
                size = fh.seek(0, os.SEEK_END)
                lead = b""
                if size:
                    fh.seek(max(0, size - (1 << 16)))
                    tail = fh.read()
                    cut = tail.rfind(b"\n")
                    if not tail.endswith(b"\n") and (cut >= 0 or len(tail) == size):
                        keep = size - len(tail) + cut + 1
                        log.warning("%s: torn last record (%d bytes) removed before appending", path, size - keep)
                        fh.truncate(keep)
                    elif not tail.endswith(b"\n"):
                        lead = b"\n"  # a >64 KiB line without a newline: close it rather than cut blind
                fh.write(lead + (json.dumps(record, sort_keys=True, default=str) + "\n").encode())
                fh.flush()
                os.fsync(fh.fileno())

    def read_audit(self) -> list[dict[str, Any]]:
        """The records in order. A torn line (an append cut short) is skipped with a warning; any
        other unreadable line is an error naming the file and line."""
        path = self.root / "audit.jsonl"
        if not path.is_file():
            return []
        return parse_audit_lines(path.read_bytes(), str(path))


def parse_audit_lines(raw: bytes, where: str) -> list[dict[str, Any]]:
    """Records of an audit.jsonl: a torn last line (no newline, not JSON) is skipped with a warning;
    any other bad line is corrupt: one error naming the file and the line."""
    out: list[dict[str, Any]] = []
    lines = raw.split(b"\n")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            rec = None
        if not isinstance(rec, dict):
            if i == len(lines):  # the last line has no newline: an append cut short
                log.warning("%s line %d is a torn (partly written) record; skipped", where, i)
                continue
            raise DataError(f"{where} line {i} is corrupt (not a JSON record)", TAMPERED_FIX)
        out.append(rec)
    return out


def open_backend(uri: str) -> Backend:
    """The backend of a registry root: gs://bucket/prefix (seren.registry.store_gcs) or a local directory."""
    if uri.startswith("gs://"):
        from seren.registry.store_gcs import GCSBackend

        return GCSBackend(uri)
    if "://" in uri:
        raise ConfigError(f"unsupported registry URI {uri!r}", "use a local directory or gs://BUCKET/PREFIX")
    return LocalBackend(uri)
