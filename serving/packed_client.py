"""Query the `serengpt_packed` ensemble: one request row per user, all of its candidates at once.

Same transport, retries and one-line errors as `SerenClient` (it is one). A request row carries
one user's profile and candidate texts; the server packs them (shared part once) and returns one
score per candidate. Several users can share a request (`users_per_request`): shorter candidate
lists are padded with empty texts, which the packer treats as absent slots. Input errors found
by the packer (no candidates, a candidate over the pack length) come back as one-line DataErrors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from seren.errors import ConfigError, DataError, ServiceError
from serving.client import INPUTS, OUTPUT, SerenClient

PACKED_MODEL = "serengpt_packed"


class PackedClient(SerenClient):
    """`PackedClient(url).score_users([(profile, [item, ...]), ...]) -> [np.ndarray per user]`."""

    def __init__(self, url: str, *args: Any, model: str = PACKED_MODEL, users_per_request: int = 1, **kw: Any) -> None:
        super().__init__(url, *args, model=model, **kw)
        if users_per_request < 1:
            raise ConfigError(f"users_per_request must be >= 1, got {users_per_request}", "pass 1 or more")
        self.users_per_request = int(users_per_request)

    def _infer_users(self, users: Sequence[tuple[str, Sequence[str]]]) -> list[np.ndarray]:
        mod: Any
        if self.protocol == "http":
            import tritonclient.http as mod
        else:
            import tritonclient.grpc as mod
        width = max(len(items) for _, items in users)
        prof = np.array([[p.encode("utf-8")] for p, _ in users], dtype=np.object_)
        items = np.array(
            [[t.encode("utf-8") for t in its] + [b""] * (width - len(its)) for _, its in users], dtype=np.object_
        )
        tensors = []
        for name, arr in zip(INPUTS, (prof, items), strict=True):
            inp = mod.InferInput(name, list(arr.shape), "BYTES")
            inp.set_data_from_numpy(arr)
            tensors.append(inp)
        kw = {"client_timeout": self.timeout} if self.protocol == "grpc" else {}
        try:
            result = self._call(
                lambda: self.client.infer(self.model, tensors, outputs=[mod.InferRequestedOutput(OUTPUT)], **kw),
                "inference",
            )
        except ServiceError as exc:
            if "packer: " in exc.problem:  # the user's input, not the server, is at fault
                problem, _, fix = exc.problem.split("packer: ", 1)[1].partition(". Fix: ")
                raise DataError(problem, fix or "check the candidate texts") from None
            raise
        scores = result.as_numpy(OUTPUT)
        if scores is None or scores.ndim != 2 or scores.shape[0] != len(users) or scores.shape[1] < width:
            shape = None if scores is None else list(scores.shape)
            raise ServiceError(
                f"shape mismatch: {self.model!r} at {self.url} returned {OUTPUT} {shape} for {len(users)} users x {width}",
                "point the client at the serengpt_packed ensemble",
            )
        return [scores[u, : len(its)].astype(np.float32) for u, (_, its) in enumerate(users)]

    def score_users(self, users: Sequence[tuple[str, Sequence[str]]]) -> list[np.ndarray]:
        """P(serendipitous) per candidate for each (profile, candidates) user, in order."""
        users = [(str(p), [str(i) for i in its]) for p, its in users]
        for k, (p, its) in enumerate(users):
            if not its:
                raise DataError(f"user #{k} has an empty candidate list", "pass at least one candidate per user")
            bad = [i for i, t in enumerate(its) if not t.strip()]
            if bad or not p.strip():
                what = f"item text #{bad[0]}" if bad else "the profile text"
                raise DataError(f"user #{k}: {what} is empty", "give every profile and item a non-empty text")
        out: list[np.ndarray] = []
        step = min(self.users_per_request, self.max_batch_size())
        for s in range(0, len(users), step):
            out.extend(self._infer_users(users[s : s + step]))
        calibration = self.calibration_to_apply()  # None when the served graph applies the map itself
        if calibration is not None:
            from seren.llm.calibration import apply_calibration

            out = [np.asarray(apply_calibration(calibration, o), dtype=np.float32) for o in out]
        return out

    def score(self, profile_texts: str | Sequence[str], item_texts: Sequence[str]) -> np.ndarray:
        """Per-pair interface: pairs with the same profile text are one user (one request row)."""
        items = [str(x) for x in item_texts]
        profiles = [profile_texts] * len(items) if isinstance(profile_texts, str) else [str(x) for x in profile_texts]
        if len(profiles) != len(items):
            raise DataError(
                f"{len(profiles)} profile texts but {len(items)} item texts",
                "pass one profile per item, or a single profile",
            )
        if not items:
            return np.zeros(0, dtype=np.float32)
        groups: dict[str, list[int]] = {}
        for i, p in enumerate(profiles):
            groups.setdefault(p, []).append(i)
        rows = list(groups.values())
        out = np.zeros(len(items), dtype=np.float32)
        per_user = self.score_users([(profiles[r[0]], [items[i] for i in r]) for r in rows])
        for idx, scores in zip(rows, per_user, strict=True):
            out[idx] = scores
        return out
