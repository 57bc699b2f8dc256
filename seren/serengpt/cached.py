"""LoRA SFT on the top blocks from cached hidden states: the same training, several times cheaper.

When LoRA adapts only the top N decoder blocks, the blocks below are frozen: for a given example
their output never changes during training. The plain path still runs them at every step (and the
benchmark's budget visits every example ~2.4 times). Here they run once per example, their output
(the input of block L-N) is kept in memory, and every step runs only the top N blocks, the final
norm and the Yes/No answer positions of the LM head. Same model, same loss (completion-only NLL,
mean over the batch's completion tokens), same AdamW and constant-with-warmup schedule, same
seeded batch order: `cached=False` runs the identical loop through the whole model, and the test
checks both give the same loss curve.

Works for decoders whose forward accepts `inputs_embeds` and applies no scaling to it (Llama,
Qwen2/3, Mistral: `SUPPORTED`); other models use the trl SFTTrainer path.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SUPPORTED = {"llama", "qwen2", "qwen3", "mistral"}
MAX_CACHE_BYTES = 3 * 1024**3  # beyond this the plain path is used (memory, not speed)


@dataclass
class Example:
    ids: list[int]
    n_prompt: int  # loss on ids[n_prompt:] (the completion + EOS)


def tokenize(tokenizer: Any, prompts: Sequence[str], completions: Sequence[str]) -> list[Example]:
    """Prompt tokenised as the scorer does, completion + EOS appended token-wise (so the answer
    token is predicted exactly where the scorer reads P(Yes))."""
    eos = tokenizer.eos_token or ""
    p_ids = tokenizer(list(prompts))["input_ids"]
    c_ids = tokenizer([c + eos for c in completions], add_special_tokens=False)["input_ids"]
    return [Example(list(p) + list(c), len(p)) for p, c in zip(p_ids, c_ids, strict=True)]


def _inner(model: Any) -> Any:
    """The causal LM under a peft wrapper (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def supports_cache(model: Any, top_layers: int | None) -> bool:
    lm = _inner(model)
    n = int(getattr(lm.config, "num_hidden_layers", 0) or 0)
    return bool(top_layers) and 0 < int(top_layers) < n and lm.config.model_type in SUPPORTED


@contextmanager
def _only_layers(decoder: Any, start: int):
    """Temporarily make the decoder run blocks[start:] only (the input is then their cached input)."""
    from torch import nn

    full = decoder.layers
    decoder.layers = nn.ModuleList(list(full)[start:])
    try:
        yield
    finally:
        decoder.layers = full


def _pad_right(rows: list[Any], pad: int) -> tuple[Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def cache_hidden(model: Any, examples: list[Example], start: int, batch_size: int = 8) -> list[Any]:
    """Input of block `start` for every example (float32 [len, d]), lower blocks run once, no grad."""
    import torch

    lm = _inner(model)
    decoder = lm.get_decoder()
    out: list[Any] = [None] * len(examples)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].ids))
    captured: dict[str, Any] = {}

    class _Stop(Exception):
        pass

    def grab(_mod: Any, args: tuple, kwargs: dict) -> None:
        captured["h"] = args[0] if args else kwargs["hidden_states"]
        raise _Stop

    hook = decoder.layers[start].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                ids, mask = _pad_right([examples[i].ids for i in idx], 0)
                try:
                    decoder(input_ids=ids, attention_mask=mask, use_cache=False)
                except _Stop:
                    pass
                h = captured.pop("h").detach().float()
                for r, i in enumerate(idx):
                    out[i] = h[r, : len(examples[i].ids)].clone()
    finally:
        hook.remove()
    return out


def _batch_loss(model: Any, batch: list[Example], hidden: list[Any] | None, start: int, pad: int) -> Any:
    """Completion-only NLL of one batch; from cached block inputs when `hidden` is given."""
    import torch

    lm = _inner(model)
    decoder, head = lm.get_decoder(), lm.get_output_embeddings()
    ids, mask = _pad_right([e.ids for e in batch], pad)
    if hidden is None:
        h = decoder(input_ids=ids, attention_mask=mask, use_cache=False)[0]
    else:
        width = ids.shape[1]
        x = torch.zeros(len(batch), width, hidden[0].shape[-1], dtype=hidden[0].dtype)
        for r, t in enumerate(hidden):
            x[r, : t.shape[0]] = t
        with _only_layers(decoder, start):
            h = decoder(inputs_embeds=x, attention_mask=mask, use_cache=False)[0]
    # position t predicts token t+1: only completion targets meet the LM head
    rows, cols, targets = [], [], []
    for r, e in enumerate(batch):
        for t in range(max(e.n_prompt, 1) - 1, len(e.ids) - 1):
            rows.append(r)
            cols.append(t)
            targets.append(e.ids[t + 1])
    logits = head(h[torch.tensor(rows), torch.tensor(cols)]).float()
    return torch.nn.functional.cross_entropy(logits, torch.tensor(targets))


def batch_order(n: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """`steps` batches: seeded shuffles of all examples, epoch after epoch (last partial batch kept)."""
    import torch

    g = torch.Generator().manual_seed(int(seed))
    out: list[list[int]] = []
    while len(out) < steps:
        perm = torch.randperm(n, generator=g).tolist()
        out.extend(perm[s : s + batch_size] for s in range(0, n, batch_size))
    return out[:steps]


def train_loop(
    model: Any,
    examples: list[Example],
    top_layers: int,
    max_steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    cached: bool = True,
    pad_id: int = 0,
    on_step: Callable[[int, int, float], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train the LoRA parameters of `model` (a peft model); (log history, timing info)."""
    import torch
    from transformers import get_constant_schedule_with_warmup

    lm = _inner(model)
    n_layers = int(lm.config.num_hidden_layers)
    start = n_layers - int(top_layers)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=float(learning_rate), weight_decay=0.0)
    sched = get_constant_schedule_with_warmup(opt, num_warmup_steps=max(1, max_steps // 10))
    info: dict[str, Any] = {"hidden_state_cache": bool(cached), "cached_from_block": start if cached else None}
    hidden = None
    t0 = time.perf_counter()
    if cached:
        model.eval()
        hidden = cache_hidden(model, examples, start)
        info["cache_seconds"] = round(time.perf_counter() - t0, 2)
        info["cache_mb"] = round(sum(h.numel() * 4 for h in hidden) / 2**20, 1)
    model.train()
    history: list[dict[str, Any]] = []
    t1 = time.perf_counter()
    for step, idx in enumerate(batch_order(len(examples), batch_size, max_steps, seed), start=1):
        batch = [examples[i] for i in idx]
        loss = _batch_loss(model, batch, [hidden[i] for i in idx] if hidden is not None else None, start, pad_id)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        value = float(loss.detach())
        if not math.isfinite(value):
            log.warning("non-finite loss at step %d", step)
        history.append({"loss": value, "step": step, "learning_rate": sched.get_last_lr()[0]})
        if on_step is not None:
            on_step(step, max_steps, value)
    model.eval()
    info["train_seconds"] = round(time.perf_counter() - t1, 2)
    info["seconds_per_step"] = round(info["train_seconds"] / max(1, max_steps), 3)
    return history, info


def cache_bytes(examples: list[Example], hidden_size: int) -> int:
    return sum(len(e.ids) for e in examples) * int(hidden_size) * 4


def use_cache(model: Any, tokenizer: Any, data: Any, top_layers: int | None, wanted: bool) -> bool:
    """Whether the cached path applies: asked for, LoRA on a top-block subset, a supported decoder,
    and the cache fits in MAX_CACHE_BYTES (estimated from the token count)."""
    if not wanted or not supports_cache(model, top_layers):
        return False
    n_tokens = sum(len(x) for x in tokenizer(list(data["prompt"]))["input_ids"]) + 4 * len(data)
    if n_tokens * int(_inner(model).config.hidden_size) * 4 > MAX_CACHE_BYTES:
        log.info("hidden-state cache would exceed %d bytes: plain path", MAX_CACHE_BYTES)
        return False
    return True


class _State:
    def __init__(self, history: list[dict[str, Any]], steps: int) -> None:
        self.log_history = history
        self.global_step = steps


class CachedRun:
    """What `save_merged`/the card read from a trainer: `.model`, `.state`, plus `cache_info`."""

    def __init__(self, model: Any, history: list[dict[str, Any]], info: dict[str, Any]) -> None:
        self.model = model
        self.state = _State(history, len(history))
        self.cache_info = info


def fit_cached(
    model: Any, tokenizer: Any, data: Any, params: dict[str, Any], peft_config: Any, cached: bool = True
) -> tuple[CachedRun, float]:
    """LoRA-wrap `model`, train it with `train_loop`; (run, seconds). `params` as `budget_params`."""
    import torch
    from peft import get_peft_model

    from seren import progress

    torch.manual_seed(int(params["seed"]))  # LoRA init, as the trainer path seeds it
    peft_model = get_peft_model(model, peft_config)
    examples = tokenize(tokenizer, data["prompt"].astype(str).tolist(), data["completion"].astype(str).tolist())
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    t0 = time.perf_counter()
    history, info = train_loop(
        peft_model,
        examples,
        int(params["lora_layers"]),
        int(params["max_steps"]),
        int(params["batch_size"]),
        float(params["learning_rate"]),
        int(params["seed"]),
        cached=cached,
        pad_id=int(pad or 0),
        on_step=lambda step, total, loss: progress.emit("sft", step, total, loss=loss),
    )
    return CachedRun(peft_model, history, info), time.perf_counter() - t0
