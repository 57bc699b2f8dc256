"""Build the Triton model repository for SerenGPT: tokenizer -> scorer, wrapped in the `serengpt` ensemble.

The config.pbtxt messages themselves are built in serving/triton_config.py.

Configs are `tritonclient.grpc.model_config_pb2.ModelConfig` messages written with protobuf
text_format, so every field is type-checked by the schema Triton itself parses. Targets:

- ``local``: scorer on the python backend running ONNX Runtime (the only backend in pytriton's
  tritonserver; what runs on this machine and in CI),
- ``cpu``: scorer on Triton's ``onnxruntime_onnx`` platform (production CPU containers),
- ``gpu``: scorer on ``tensorrt_plan`` (production GPU containers; needs a built engine).

``serengpt_packed`` (the default for nearline) is the multi-candidate path: `packer` (python:
one user's profile + candidates -> one packed row, seren.llm.packed) -> `packed_scorer`
(packed.onnx: the shared part once per pack, one score per candidate). It is written next to the
per-pair ensemble whenever the export holds `packed.onnx` (and `packed.plan` for gpu).

Both ensembles' configs carry the scorer graph's calibration facts as parameters (`calibrated`,
`calibration_sha`, `calibration_method`; also in each version's manifest.json): clients read them
through the model-config API and apply the card's map only when the graph does not (older exports).

The tokenizer is always a python model: it applies seren's prompt format without transformers
(the chat template is rendered once here around two placeholders) and must produce exactly the
ids `SerenScorer.encode` produces; `build_model_repository` checks that before writing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from seren.errors import ConfigError, SerenError
from seren.io import atomic_dir, write_json
from serving.export import PACKED_PLAN, graph_calibration, packed_sibling
from serving.triton_config import (  # noqa: F401 - names importers still take from here
    ENSEMBLE,
    PACKED_ENSEMBLE,
    PACKED_SCORER,
    PACKER,
    SCORER,
    TARGETS,
    TOKENIZER,
    Target,
    ensemble_config,
    packed_ensemble_config,
    packed_scorer_config,
    packer_config,
    read_config,
    scorer_config,
    tokenizer_config,
    write_config,
)
from serving.triton_models.tokenizer.model import RELATION_FILE, load_candidate_block

log = logging.getLogger(__name__)
PACKED_SOURCE = Path(__file__).resolve().parent.parent / "seren" / "llm" / "packed.py"
MODEL_CODE = Path(__file__).resolve().parent / "triton_models"
_P_MARK, _I_MARK = "\x00SEREN_PROFILE\x00", "\x00SEREN_ITEM\x00"
# Texts that exercise stripping, braces, newlines and non-ASCII when checking the rendered template.
_CHECK_PAIRS = [
    ("  Loves jazz and {braces}; reads sci-fi.\n", "\tA cookbook: soups & stews  "),
    ("Top categories: Books/Poetry, Music/Jazz\nRecent: café reviews", "Guide to birds — coastal edition"),
    ("x", "y"),
    (
        "Top interests: Books 80%, Music 20% (entropy 0.72 bits; explores 10% outside).\n"
        "Engaged subcategories: Books/Sci-Fi 12, Music/Jazz 3; 10% of positives opened a new one.",
        "Quiet Verse\nCategory: Books/Poetry\nPrice: 12.00\nA beloved Poetry collection.",
    ),
    ("Engaged subcategories: Books/Sci-Fi 12 (+2 more); 5% of positives opened a new one.", "Category: Tech/AI"),
]
RELATION_SOURCE = Path(__file__).resolve().parent.parent / "seren" / "llm" / "relation.py"


# -- the prompt rendering shipped to the tokenizer model ------------------------------------------


# SerenScorer.encode: tokenizer(prompts, padding=True) with left padding, special tokens, no truncation.
ENCODE_RULES: dict[str, Any] = {"add_special_tokens": True, "max_length": None, "truncation_side": "left"}


def prompt_spec(tokenizer: Any, pad_to_multiple_of: int = 1) -> dict:
    """seren's prompt format rendered through `tokenizer`'s chat template around placeholders."""
    from seren.llm.prompts import build_prompt

    rendered = build_prompt(tokenizer, _P_MARK, _I_MARK)
    if (
        rendered.count(_P_MARK) != 1
        or rendered.count(_I_MARK) != 1
        or rendered.index(_P_MARK) > rendered.index(_I_MARK)
    ):
        raise SerenError(
            "the chat template does not place the profile and item texts verbatim",
            "use a tokenizer whose chat template copies message content",
        )
    prefix, rest = rendered.split(_P_MARK)
    middle, suffix = rest.split(_I_MARK)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    spec = {
        "parts": [prefix, middle, suffix],
        "pad_token_id": int(pad_id),
        "pad_to_multiple_of": int(pad_to_multiple_of),
    }
    spec.update(ENCODE_RULES)
    spec["relation"] = RELATION_FILE
    candidate = load_candidate_block(RELATION_SOURCE)
    for p, i in _CHECK_PAIRS:  # the placeholder rendering must equal a real rendering
        if f"{prefix}{p.strip()}{middle}{candidate(p, i)}{suffix}" != build_prompt(tokenizer, p, i):
            raise SerenError(
                "the chat template transforms message text; placeholder rendering differs",
                "use a tokenizer whose chat template copies message content",
            )
    return spec


# -- repository ---------------------------------------------------------------------------------------


_FICLONE = 0x40049409  # linux/fs.h: share the blocks copy-on-write (btrfs, xfs); EOPNOTSUPP elsewhere


def _place(src: Path, dst: Path) -> None:
    """An independent copy of the weights: a reflink where the filesystem has them, else a full copy.

    Never a hard link: the source is usually a registry version, and a served file damaged in
    place would damage the immutable version with it."""
    import fcntl

    try:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
        shutil.copystat(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ensemble (holds <v>/manifest.json with scorer_sha256) -> the model whose weights it records
_RECORDED = {ENSEMBLE: SCORER, "serengpt_packed": "packed_scorer"}


def verify_repository(repo: str | os.PathLike[str], models: list[str] | None = None) -> int:
    """Re-hash the served weights of every version against the scorer_sha256 its ensemble manifest
    recorded at build time; raise a one-line DataError on any difference or missing record.

    Called before Triton loads (TritonServer.start/load, promotion) so modified weights are refused,
    never served. `models`: only the ensembles/scorers among these (default all). Returns the
    number of files checked."""
    import json

    from seren.errors import DataError

    repo = Path(repo)
    fix = "rebuild the version from the registry (seren promote / build_model_repository); never edit served files"
    checked = 0
    for ens, scorer in _RECORDED.items():
        if models is not None and not ({ens, scorer} & set(models)):
            continue
        sdir = repo / scorer
        versions = sorted(p.name for p in sdir.iterdir() if p.is_dir() and p.name.isdigit()) if sdir.is_dir() else []
        for v in versions:
            mpath = repo / ens / v / "manifest.json"
            try:
                man = json.loads(mpath.read_text())
                want, target = man["scorer_sha256"], man.get("target", "local")
            except (OSError, ValueError, KeyError, TypeError):
                raise DataError(f"{mpath} is missing or unreadable: no recorded hash for {scorer} v{v}", fix) from None
            weights = sdir / v / ("model.plan" if target == "gpu" else "model.onnx")
            if not weights.is_file() or _sha256(weights) != want:
                raise DataError(
                    f"model repository {repo}: {scorer}/{v}/{weights.name} does not match the scorer_sha256 "
                    f"recorded in {ens}/{v}/manifest.json (the served weights were modified); refusing to load",
                    fix,
                )
            checked += 1
    return checked


def calibration_facts(graph: Path | None) -> dict[str, str]:
    """What the ensemble's config tells clients about the scorer graph's output (read through the
    model-config API): calibrated "true" (the card's map is folded in; its sha and method) or
    "false" (an older graph: raw P(Yes), the client applies the map). No ONNX graph to read (a gpu
    target given only an engine) or an unreadable one (Triton's load refuses it): nothing is
    claimed, and clients treat the output as raw."""
    from google.protobuf.message import DecodeError

    if graph is None or not graph.is_file():
        return {}
    try:
        g = graph_calibration(graph)
    except (DecodeError, ValueError, OSError):
        return {}
    if not g["calibrated"]:
        return {"calibrated": "false"}
    return {"calibrated": "true", "calibration_sha": str(g["calibration_sha"]), "calibration_method": str(g["method"])}


def check_encoder(tokenizer: Any, tokenizer_dir: str | os.PathLike[str], spec: dict) -> None:
    """The shipped encoder must reproduce the in-process ids on a few prompts (else refuse to build)."""
    from serving.triton_models.tokenizer.model import PromptEncoder

    candidate = load_candidate_block(RELATION_SOURCE)
    enc = PromptEncoder(dict(spec, pad_to_multiple_of=1), Path(tokenizer_dir) / "tokenizer.json", candidate)
    profiles, items = [p for p, _ in _CHECK_PAIRS], [i for _, i in _CHECK_PAIRS]
    ids, mask = enc.encode(profiles, items)
    ref_ids, ref_mask = reference_encode(tokenizer, profiles, items)
    if ids.shape != ref_ids.shape or (ids != ref_ids).any() or (mask != ref_mask).any():
        raise SerenError(
            "the Triton tokenizer model would produce different ids than the in-process scorer",
            "use a model whose tokenizer.json matches its tokenizer config (re-save it with save_pretrained)",
        )


def reference_encode(tokenizer: Any, profiles: list[str], items: list[str]) -> tuple[Any, Any]:
    """Ids as SerenScorer.encode builds them: prompts, left padding, special tokens, no truncation."""
    from seren.llm.prompts import build_prompt

    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        prompts = [build_prompt(tokenizer, p, i) for p, i in zip(profiles, items, strict=True)]
        enc = tokenizer(prompts, padding=True, return_tensors="np")
    finally:
        tokenizer.padding_side = side
    return enc["input_ids"].astype("int64"), enc["attention_mask"].astype("int64")


def build_model_repository(
    onnx_path: str | os.PathLike[str],
    tokenizer_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    target: Target = "local",
    version: int = 1,
    *,
    engine_path: str | os.PathLike[str] | None = None,
    max_batch_size: int = 64,
    queue_delay_us: int = 5000,
    instances: int = 1,
    versions_kept: int = 1,
    intra_op_threads: int = 0,
    packed_onnx: str | os.PathLike[str] | None = None,
    max_len: int = 2048,
) -> Path:
    """Write tokenizer/, scorer/ and serengpt/ (each with config.pbtxt and `version`/) under out_dir.

    With a packed graph (`packed_onnx`, default: `packed.onnx` beside onnx_path) also packer/,
    packed_scorer/ and serengpt_packed/; `max_len` is the packer's pack length limit.

    Other versions already in out_dir are kept (the version policy serves the newest
    `versions_kept`); this version's directories are replaced atomically.
    """
    from transformers import AutoTokenizer

    if target not in TARGETS:
        raise ConfigError(f"unknown serving target {target!r}", f"use one of {', '.join(TARGETS)}")
    if not isinstance(version, int) or version < 1:
        raise ConfigError(f"model version must be a positive integer, got {version!r}", "pass version=1, 2, ...")
    onnx_path, tokenizer_dir, out = Path(onnx_path), Path(tokenizer_dir), Path(out_dir)
    if target in ("local", "cpu") and not onnx_path.is_file():
        raise ConfigError(f"ONNX model {onnx_path} not found", "export it first with serving.export.export_onnx")
    if target == "gpu":
        if engine_path is None or not Path(engine_path).is_file():
            raise ConfigError(
                "the gpu target needs a TensorRT engine (model.plan)",
                "build one with serving.export.build_tensorrt on a GPU machine",
            )
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise ConfigError(
            f"{tokenizer_dir} has no tokenizer.json (a fast tokenizer)",
            "pass the model directory saved with save_pretrained",
        )
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    spec = prompt_spec(tok, pad_to_multiple_of=1 if target == "local" else 8)
    check_encoder(tok, tokenizer_dir, spec)
    v = str(version)

    tok_dir = out / TOKENIZER
    with atomic_dir(tok_dir / v) as tmp:
        shutil.copy2(MODEL_CODE / "tokenizer" / "model.py", tmp / "model.py")
        shutil.copy2(tokenizer_dir / "tokenizer.json", tmp / "tokenizer.json")
        shutil.copy2(RELATION_SOURCE, tmp / RELATION_FILE)
        write_json(tmp / "prompt.json", spec)
    write_config(tokenizer_config(max_batch_size, min(queue_delay_us, 1000), versions_kept, instances), tok_dir)

    sc_dir = out / SCORER
    with atomic_dir(sc_dir / v) as tmp:
        if target == "local":
            shutil.copy2(MODEL_CODE / "scorer" / "model.py", tmp / "model.py")
        if target in ("local", "cpu"):
            _place(onnx_path, tmp / "model.onnx")
        else:
            _place(Path(engine_path), tmp / "model.plan")  # type: ignore[arg-type]
    write_config(
        scorer_config(
            target, max_batch_size, queue_delay_us, versions_kept, instances, spec["pad_token_id"], intra_op_threads
        ),
        sc_dir,
    )

    facts = calibration_facts(onnx_path)
    ens_dir = out / ENSEMBLE
    with atomic_dir(ens_dir / v) as tmp:
        weights = onnx_path if target != "gpu" else Path(engine_path)  # type: ignore[arg-type]
        write_json(
            tmp / "manifest.json",
            {
                "target": target,
                "version": version,
                "scorer_file": weights.name,
                "scorer_sha256": _sha256(weights),
                "tokenizer_dir": str(tokenizer_dir),
                **facts,
            },
        )
    write_config(ensemble_config(max_batch_size, versions_kept, facts), ens_dir)
    packed = Path(packed_onnx) if packed_onnx is not None else packed_sibling(onnx_path)
    if packed is not None and target == "gpu" and not Path(engine_path).with_name(PACKED_PLAN).is_file():  # type: ignore[arg-type]
        log.warning("gpu target: no packed.plan beside %s; serengpt_packed not written (per-pair only)", engine_path)
        packed = None
    if packed is not None:
        write_packed(
            packed,
            tokenizer_dir,
            spec,
            out,
            target,
            version,
            engine_path,
            versions_kept,
            instances,
            intra_op_threads,
            max_len,
        )
    return out


def write_packed(
    packed_onnx: Path,
    tokenizer_dir: Path,
    spec: dict,
    out: Path,
    target: Target,
    version: int,
    engine_path: str | os.PathLike[str] | None = None,
    versions_kept: int = 1,
    instances: int = 1,
    intra_op_threads: int = 0,
    max_len: int = 2048,
    max_batch_size: int = 16,
) -> None:
    """packer/, packed_scorer/ and serengpt_packed/ for `version` (gpu: packed.plan beside the engine)."""
    if not packed_onnx.is_file():
        raise ConfigError(f"packed ONNX model {packed_onnx} not found", "export it with serving.export.export_onnx")
    plan = Path(engine_path).with_name(PACKED_PLAN) if engine_path is not None else None
    if target == "gpu" and (plan is None or not plan.is_file()):
        raise ConfigError(
            "the gpu target needs a TensorRT engine of the packed graph (packed.plan beside model.plan)",
            "build it with serving.export.build_tensorrt on a GPU machine",
        )
    v = str(version)
    with atomic_dir(out / PACKER / v) as tmp:
        shutil.copy2(MODEL_CODE / "packer" / "model.py", tmp / "model.py")
        shutil.copy2(MODEL_CODE / "tokenizer" / "model.py", tmp / "encoder.py")
        shutil.copy2(PACKED_SOURCE, tmp / "packed.py")
        shutil.copy2(tokenizer_dir / "tokenizer.json", tmp / "tokenizer.json")
        shutil.copy2(RELATION_SOURCE, tmp / RELATION_FILE)
        write_json(tmp / "prompt.json", dict(spec, pad_to_multiple_of=1))
    rounding = (1, 1) if target == "local" else (64, 8)  # fixed-shape backends batch equal shapes only
    write_config(packer_config(versions_kept, instances, max_batch_size, max_len, *rounding), out / PACKER)
    with atomic_dir(out / PACKED_SCORER / v) as tmp:
        if target == "local":
            shutil.copy2(MODEL_CODE / "packed_scorer" / "model.py", tmp / "model.py")
            shutil.copy2(PACKED_SOURCE, tmp / "packed.py")
        if target in ("local", "cpu"):
            _place(packed_onnx, tmp / "model.onnx")
        else:
            _place(plan, tmp / "model.plan")  # type: ignore[arg-type]
    cfg = packed_scorer_config(
        target, max_batch_size, 2000, versions_kept, instances, spec["pad_token_id"], intra_op_threads, max_len
    )
    write_config(cfg, out / PACKED_SCORER)
    weights = packed_onnx if target != "gpu" else plan
    facts = calibration_facts(packed_onnx)
    with atomic_dir(out / PACKED_ENSEMBLE / v) as tmp:
        write_json(
            tmp / "manifest.json",
            {
                "target": target,
                "version": version,
                "scorer_file": weights.name,  # type: ignore[union-attr]
                "scorer_sha256": _sha256(weights),  # type: ignore[arg-type]
                "tokenizer_dir": str(tokenizer_dir),
                "max_len": max_len,
                **facts,
            },
        )
    write_config(packed_ensemble_config(max_batch_size, versions_kept, facts), out / PACKED_ENSEMBLE)
