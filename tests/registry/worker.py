"""A separate process for the concurrency tests: waits for a go-file, then does one thing and prints
a JSON line {result, problem, t0, t1}. Usage:
  worker.py GO_FILE promote CONFIG MODEL VERSION ENV
  worker.py GO_FILE swap REGISTRY MODEL ENV EXPECTED_GENERATION TAG
  worker.py GO_FILE register REGISTRY MODEL ONNX TOKENIZER_DIR
"""

import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    go, mode, *args = sys.argv[1:]
    # import (and warm) everything before the barrier so both processes start the race together
    if mode == "promote":
        import transformers  # noqa: F401

        import serving.client  # noqa: F401
        import serving.model_repository  # noqa: F401
        import serving.triton_models.scorer.model  # noqa: F401
    from seren.errors import SerenError
    from seren.registry import Registry, promote

    Path(f"{go}.ready.{os.getpid()}").touch()
    while not Path(go).exists():
        time.sleep(0.002)
    t0 = time.time()
    out: dict = {}
    try:
        if mode == "promote":
            config, model, version, env = args
            res = promote(model, int(version), env, environments=config)
            out = {"result": "ok", "triton_version": res["triton_version"]}
        elif mode == "swap":
            registry, model, env, expected, tag = args
            ptr = Registry(registry).swap_pointer(model, env, {"version": 1, "tag": tag}, int(expected))
            out = {"result": "ok", "generation": ptr.generation}
        elif mode == "register":
            registry, model, onnx, tok = args
            man = Registry(registry).register(model, onnx=onnx, tokenizer_dir=tok)
            out = {"result": "ok", "version": man["version"]}
        else:
            raise SystemExit(f"unknown mode {mode}")
    except SerenError as exc:
        out = {"result": type(exc).__name__, "problem": exc.problem}
    out.update(t0=t0, t1=time.time())
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
