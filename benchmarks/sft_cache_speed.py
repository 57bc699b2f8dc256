"""SFT step cost with SmolLM2 on CPU: trl SFTTrainer vs the plain loop vs cached lower-block states.

All three train LoRA on the top `--lora-layers` blocks with the quality benchmark's settings
(batch 4, lr 3e-3) on the synthetic benchmark's SFT examples. Reported per path: seconds per step
(median of the timed steps), the one-off cache build, and the projected SFT stage time for
`--budget` steps. Run inside the shared lock; the load average is recorded at start and end.

Run: .venv/bin/python benchmarks/sft_cache_speed.py [--steps 6] [--budget 144]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "sft_cache_speed.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--budget", type=int, default=144)
    ap.add_argument("--lora-layers", type=int, default=8)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks._machine import Quiet

    quiet = Quiet("sft_cache_speed").start()

    import torch
    from peft import get_peft_model

    from seren.data import save_dataset
    from seren.data.synthetic import SyntheticConfig, generate
    from seren.llm.base import load_causal_lm, resolve_base_model
    from seren.profiles.io import build_profiles_file
    from seren.serengpt.cached import tokenize, train_loop
    from seren.serengpt.labeling import TrainingData, run_labeling
    from seren.serengpt.sft import lora_config

    work = Path(tempfile.mkdtemp(prefix="sft_cache_speed."))
    data_dir = work / "data"
    save_dataset(generate(SyntheticConfig(n_users=500, n_items=800, seed=0)), data_dir)
    # the SFT table the serengpt_training pipeline's profiles and labeling steps build (its defaults)
    build_profiles_file(data_dir, work / "profiles.parquet", "smollm2", 64, None, 0.4, "none", None, 2, True)
    run_labeling(data_dir, work / "profiles.parquet", work / "training_data", base_model="smollm2", seed=0)
    train = TrainingData.load(work / "training_data").sft_train
    base = resolve_base_model("smollm2")
    result: dict = {
        "n_examples": len(train),
        "lora_layers": args.lora_layers,
        "batch_size": 4,
        "torch_threads": torch.get_num_threads(),
        "paths": {},
    }

    def loop(cached: bool) -> dict:
        model, tok = load_causal_lm(base)
        torch.manual_seed(0)
        pm = get_peft_model(model, lora_config(8, 16, model, top_layers=args.lora_layers))
        ex = tokenize(tok, train["prompt"].tolist(), train["completion"].tolist())
        times: list[float] = []
        last = [time.perf_counter()]

        def tick(step: int, total: int, loss: float) -> None:
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now

        # train_loop builds the cache before step 1: time steps only via the callback
        t0 = time.perf_counter()
        hist, info = train_loop(pm, ex, args.lora_layers, args.steps, 4, 3e-3, 0, cached=cached, on_step=tick)
        times[0] = times[0] - info.get("cache_seconds", 0.0)
        step = statistics.median(times[1:] or times)
        return {
            "seconds_per_step": round(step, 3),
            "step_seconds": [round(t, 3) for t in times],
            "cache_seconds": info.get("cache_seconds", 0.0),
            "cache_mb": info.get("cache_mb"),
            "wall_seconds": round(time.perf_counter() - t0, 1),
            "losses": [round(h["loss"], 5) for h in hist],
            "projected_stage_seconds": round(info.get("cache_seconds", 0.0) + step * args.budget, 1),
        }

    def sft_trainer() -> dict:
        from seren.serengpt.sft import train_sft

        t0 = time.perf_counter()
        out = train_sft(
            base,
            train,
            work / "trl",
            max_steps=args.steps,
            batch_size=4,
            learning_rate=3e-3,
            lora_layers=args.lora_layers,
            progress=False,
            hidden_cache=False,
        )
        from seren.serengpt.sft import read_model_card

        secs = read_model_card(out)["train_metrics"]["seconds"]
        return {
            "seconds_per_step": round(secs / args.steps, 3),
            "train_seconds": secs,
            "wall_seconds": round(time.perf_counter() - t0, 1),
            "projected_stage_seconds": round(secs / args.steps * args.budget, 1),
        }

    result["paths"]["cached"] = loop(True)
    result["paths"]["plain_loop"] = loop(False)
    result["paths"]["trl_sft_trainer"] = sft_trainer()
    p = result["paths"]
    result["speedup_per_step_vs_plain_loop"] = round(
        p["plain_loop"]["seconds_per_step"] / p["cached"]["seconds_per_step"], 2
    )
    result["speedup_per_step_vs_trl"] = round(
        p["trl_sft_trainer"]["seconds_per_step"] / p["cached"]["seconds_per_step"], 2
    )
    result["speedup_stage_vs_trl"] = round(
        p["trl_sft_trainer"]["projected_stage_seconds"] / p["cached"]["projected_stage_seconds"], 2
    )
    result["quiet"] = quiet.stop()
    from seren.io import write_json

    write_json(args.out, result)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
