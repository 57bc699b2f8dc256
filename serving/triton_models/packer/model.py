"""Triton `packer` model: one user's profile + candidate texts -> one packed row for the packed scorer.

Each request row is a user: PROFILE_TEXT [1] and ITEM_TEXT [C] (empty strings are padding slots,
so a client may send a few users with different candidate counts in one request). The full
per-pair prompts are tokenised exactly like the `tokenizer` model (the same encoder code ships as
`encoder.py`), split into the shared token prefix and one tail per candidate, greedily packed
into packs of at most `max_len` tokens and joined into one row (`packed.py` is seren.llm.packed,
numpy only). Outputs INPUT_IDS / SEGMENT_IDS [L] and ANSWER_INDEX [C'] per row, right padded;
`pad_to_multiple_of` / `slots_multiple_of` round L and C' up so that fixed-shape backends
(onnxruntime, TensorRT) can batch requests of different users.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

ENCODER_FILE, PACKED_FILE = "encoder.py", "packed.py"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class Packer:
    """Texts -> packed rows (numpy int64), with the shipped encoder and packing code."""

    def __init__(
        self, directory: str | Path, max_len: int = 2048, pad_to_multiple_of: int = 1, slots_multiple_of: int = 1
    ) -> None:
        d = Path(directory)
        self.encoder = _load(d / ENCODER_FILE, "seren_packer_encoder").PromptEncoder.from_dir(d)
        self.packed = _load(d / PACKED_FILE, "seren_packer_packed")
        self.max_len = int(max_len)
        self.pad_to, self.slots_to = int(pad_to_multiple_of), int(slots_multiple_of)

    def user_row(self, profile: str, items: list[str]):  # noqa: ANN201 - a packed.Pack
        items = [i for i in items if i.strip()]
        if not profile.strip():
            raise self.packed.PackError("empty profile text", "give every user a non-empty profile")
        if not items:
            raise self.packed.PackError("empty candidate list: nothing to score", "pass at least one candidate item")
        enc = self.encoder
        prompts = [enc.prompt(profile, i) for i in items]
        rows = [e.ids for e in enc.tokenizer.encode_batch(prompts, add_special_tokens=enc.add_special_tokens)]
        shared, tails = self.packed.split_shared(rows)
        return self.packed.join_packs(self.packed.pack_user(shared, tails, self.max_len))

    def encode(self, profiles: list[str], items: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = [self.user_row(p, i) for p, i in zip(profiles, items, strict=True)]
        return self.packed.to_arrays(rows, self.encoder.pad_id, self.pad_to, self.slots_to)


def _texts(arr: np.ndarray) -> list[str]:
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in arr.reshape(-1)]


def _param(config: dict, key: str, default: str) -> str:
    return config.get("parameters", {}).get(key, {}).get("string_value", default)


class TritonPythonModel:
    """One response per request; a bad request (no candidates, too long) fails alone, in one line."""

    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        here = Path(args["model_repository"]) / args["model_version"]
        self.packer = Packer(
            here,
            int(_param(config, "max_len", "2048")),
            int(_param(config, "pad_to_multiple_of", "1")),
            int(_param(config, "slots_multiple_of", "1")),
        )

    def execute(self, requests: list) -> list:
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            try:
                profiles = _texts(pb_utils.get_input_tensor_by_name(request, "PROFILE_TEXT").as_numpy())
                arr = pb_utils.get_input_tensor_by_name(request, "ITEM_TEXT").as_numpy()
                arr = arr.reshape(len(profiles), -1)
                ids, seg, ans = self.packer.encode(profiles, [_texts(row) for row in arr])
                out = [
                    pb_utils.Tensor("INPUT_IDS", ids),
                    pb_utils.Tensor("SEGMENT_IDS", seg),
                    pb_utils.Tensor("ANSWER_INDEX", ans),
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=out))
            except Exception as exc:  # one bad request must not fail the batch it was grouped with
                msg = " ".join(str(exc).split())
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"packer: {msg}")))
        return responses
