"""Triton `tokenizer` model: (profile text, item text) -> left-padded input_ids / attention_mask.

Runs in .venv-triton without transformers or seren, so the build step ships two files beside
this one: `tokenizer.json` (the model's fast tokenizer) and `prompt.json` (seren's prompt format
rendered through the chat template around two placeholders, plus the padding/truncation rules
of `SerenScorer.encode`), and `relation.py` (seren.llm.relation, standard library only: the
candidate's relation line). The build step checks that this encoder reproduces the in-process ids.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

PROMPT_FILE = "prompt.json"
TOKENIZER_FILE = "tokenizer.json"
RELATION_FILE = "relation.py"


def load_candidate_block(path: str | Path) -> Callable[[str, str], str]:
    """`candidate_block(profile_text, item_text)` from a copy of seren/llm/relation.py."""
    spec = importlib.util.spec_from_file_location("seren_prompt_relation", str(path))
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load the prompt relation code from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.candidate_block


def _plain(profile_text: str, item_text: str) -> str:
    return item_text.strip()


class PromptEncoder:
    """The whole text -> ids path: prompt rendering, tokenisation, truncation, left padding."""

    def __init__(
        self, spec: dict, tokenizer_path: str | Path, candidate: Callable[[str, str], str] | None = None
    ) -> None:
        from tokenizers import Tokenizer

        if spec.get("relation") and candidate is None:
            raise ValueError(f"the prompt format needs {spec['relation']} (the candidate's relation line)")
        self.candidate = candidate or _plain
        # a PROFILE_TEXT may be relation.profile_input's JSON envelope (prose + structured relation fields)
        glb = getattr(self.candidate, "__globals__", {})
        self.split = glb.get("split_profile") or (lambda p: (p, None))
        self.prefix, self.middle, self.suffix = spec["parts"]
        self.add_special_tokens = bool(spec.get("add_special_tokens", True))
        self.pad_id = int(spec["pad_token_id"])
        self.max_length = int(spec["max_length"]) if spec.get("max_length") else None
        self.truncation_side = spec.get("truncation_side", "left")
        self.pad_to_multiple_of = int(spec.get("pad_to_multiple_of") or 1)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    @classmethod
    def from_dir(cls, directory: str | Path) -> PromptEncoder:
        d = Path(directory)
        spec = json.loads((d / PROMPT_FILE).read_text())
        candidate = load_candidate_block(d / spec["relation"]) if spec.get("relation") else None
        return cls(spec, d / TOKENIZER_FILE, candidate)

    def prompt(self, profile_text: str, item_text: str) -> str:
        # Same as seren.llm.prompts.build_prompt: texts are stripped, then placed in the template.
        text = self.split(profile_text)[0]
        return f"{self.prefix}{text.strip()}{self.middle}{self.candidate(profile_text, item_text)}{self.suffix}"

    def encode(self, profile_texts: list[str], item_texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if len(profile_texts) != len(item_texts):
            raise ValueError(f"{len(profile_texts)} profile texts but {len(item_texts)} item texts")
        prompts = [self.prompt(p, i) for p, i in zip(profile_texts, item_texts, strict=True)]
        rows = [e.ids for e in self.tokenizer.encode_batch(prompts, add_special_tokens=self.add_special_tokens)]
        if self.max_length:
            m = self.max_length
            rows = [r[-m:] if self.truncation_side == "left" else r[:m] for r in rows]
        width = max((len(r) for r in rows), default=0)
        k = self.pad_to_multiple_of
        width = -(-width // k) * k
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            if r:
                ids[i, width - len(r) :] = r
                mask[i, width - len(r) :] = 1
        return ids, mask


def _texts(arr: np.ndarray) -> list[str]:
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in arr.reshape(-1)]


class TritonPythonModel:
    """One response per request; requests are independent (the ensemble's scorer re-batches)."""

    def initialize(self, args: dict) -> None:
        here = Path(args["model_repository"]) / args["model_version"]
        self.encoder = PromptEncoder.from_dir(here)

    def execute(self, requests: list) -> list:
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            try:
                profiles = _texts(pb_utils.get_input_tensor_by_name(request, "PROFILE_TEXT").as_numpy())
                items = _texts(pb_utils.get_input_tensor_by_name(request, "ITEM_TEXT").as_numpy())
                ids, mask = self.encoder.encode(profiles, items)
                out = [pb_utils.Tensor("INPUT_IDS", ids), pb_utils.Tensor("ATTENTION_MASK", mask)]
                responses.append(pb_utils.InferenceResponse(output_tensors=out))
            except Exception as exc:  # one bad request must not fail the batch it was grouped with
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"tokenizer: {exc}")))
        return responses
