"""Fixtures for labeling tests: tokenizer, synthetic dataset + cutoff profiles, the hand-built
dataset with its cutoff profiles, and a real OpenAI-compatible teacher: `transformers serve`
(transformers' own FastAPI server) serving tiny local models on a free loopback port.

The served models are the tiny random test model (it answers garbage: blank lines) and two
copies of it fine-tuned here for a few dozen steps to answer teacher prompts with "Yes. ..." and
"No. ..." respectively, so a test knows the label a real generation over HTTP carries, and
checks the labels table against a parse of the replies the server really returned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from seren.data import Dataset, load_dataset

from ..profiles.handmade import CUT, hand_dataset
from .chat_server import free_port

YES_ANSWER = "Yes. A fresh pick."
NO_ANSWER = "No. Too far from them."


@pytest.fixture(scope="session")
def tok(tiny_model_dir: Path):
    from seren.profiles import load_tokenizer

    return load_tokenizer(tiny_model_dir)


@pytest.fixture(scope="session")
def synth(small_dataset: Path) -> Dataset:
    return load_dataset(small_dataset)


@pytest.fixture(scope="session")
def synth_profiles(synth: Dataset, tok) -> pd.DataFrame:
    """Four snapshots covering the last 80% of events (the pipeline's default labeling setup)."""
    from seren.profiles import build_profile_snapshots, labeling_cutoffs

    return build_profile_snapshots(synth, tok, labeling_cutoffs(synth.interactions, 0.8, snapshots=4))


@pytest.fixture
def hand() -> Dataset:
    return hand_dataset()


@pytest.fixture
def hand_profiles(hand: Dataset, tok) -> pd.DataFrame:
    from seren.profiles import build_profiles

    return build_profiles(hand, tok, as_of=CUT)


def _train_constant_answer(src: Path, out: Path, answer: str, max_steps: int = 300) -> Path:
    """Fine-tune the tiny model (all weights, fixed seed) to answer `answer` to teacher prompts.

    A real causal LM, saved like any other, that `transformers serve` loads and decodes. On
    prompts it was not trained on its reply parses to the answer's label (Yes/No); the rest may
    drift (a 2-layer model: "No Too far from them.." was seen), so tests parse what it returned.
    Trained until the mean answer-token loss is < 0.02, then checked on an unseen teacher prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(src))
    rng = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(src))
        from seren.serengpt.labeling import teacher_prompt

        prompts = [teacher_prompt(f"Engaged subcategories: {w} 3.", f"{t}\nCategory: {c}") for w, t, c in (
            ("Music/Jazz", "A cookbook", "Food/Baking"), ("Books/Poetry", "Rose Care", "Garden/Roses"),
            ("Outdoor/Hiking", "The Alibi", "Books/Mystery"), ("Cars/Parts", "Swing Time", "Music/Jazz"),
        )]  # fmt: skip
        # and prompts shaped like real ones (profile lines, a description, a relation line last)
        prompts += [teacher_prompt(
            f"Top interests: {w.split('/')[0]} 100% (entropy 0.00 bits; explores 0% outside).\n"
            f"Engaged subcategories: {w} 3; 10% of positives opened a new one.",
            f"{t}\nCategory: {c}\nA well liked {c.split('/')[1].lower()} pick.",
        ) for w, t, c in (
            ("Music/Jazz", "Quiet Verse", "Books/Poetry"), ("Garden/Roses", "Tulip Beds", "Garden/Bulbs"),
            ("Books/Mystery", "Blue Notes", "Music/Jazz"), ("Food/Baking", "Trail Maps", "Outdoor/Hiking"),
        )]  # fmt: skip
        target = tok(answer + tok.eos_token, add_special_tokens=False)["input_ids"]
        rows = []
        for p in prompts:
            text = tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            rows.append(tok(text, add_special_tokens=False)["input_ids"])
        width = max(map(len, rows)) + len(target)
        pad = tok.pad_token_id
        x = torch.tensor([r + target + [pad] * (width - len(r) - len(target)) for r in rows])
        y = torch.tensor([[-100] * len(r) + target + [-100] * (width - len(r) - len(target)) for r in rows])
        mask = (y != -100) | (torch.arange(width)[None, :] < torch.tensor([len(r) for r in rows])[:, None])
        # next-token targets: the logits at position t predict token t+1; only answer positions count
        pos = (y[:, 1:] != -100).nonzero(as_tuple=True)
        want = y[:, 1:][pos]
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        model.train()
        loss = float("inf")
        for _ in range(max_steps):  # until the answer tokens are near-certain on every training prompt
            hidden = model.model(input_ids=x, attention_mask=mask.long()).last_hidden_state
            logits = model.lm_head(hidden[:, :-1][pos])  # the LM head on answer positions only (cheap)
            step_loss = torch.nn.functional.cross_entropy(logits, want)
            step_loss.backward()
            opt.step()
            opt.zero_grad()
            loss = float(step_loss.detach())
            if loss < 0.02:
                break
        model.eval()
        probe = tok.apply_chat_template(
            [
                {
                    "role": "user",
                    "content": teacher_prompt("Top interests: Books 70%.", "Tulip Beds\nCategory: Garden/Bulbs"),
                }
            ],
            tokenize=False,
            add_generation_prompt=True,
        )
        enc = tok(probe, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            gen = model.generate(**enc, max_new_tokens=24, do_sample=False, pad_token_id=pad)
        got = tok.decode(gen[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        from seren.serengpt.labeling import parse_teacher

        parsed, expected = parse_teacher(got), parse_teacher(answer)
        assert parsed and parsed[0] == expected[0], f"the teacher did not learn its answer (loss {loss:.3f}): {got!r}"
        model.eval()
        model.save_pretrained(str(out))
        tok.save_pretrained(str(out))
    finally:
        torch.random.set_rng_state(rng)
    return out


@dataclass
class TeacherServer:
    """A running `transformers serve` (OpenAI-compatible /v1/chat/completions) and its models."""

    url: str
    log: Path
    models: dict[str, Path]

    def backend(self, model: str, **kw: object):
        """The project's OpenAIBackend pointed at one served model ('yes' | 'no' | 'random' | a path)."""
        from seren.llm.backends import OpenAIBackend

        name = str(self.models.get(model, model))
        return OpenAIBackend(self.url, name, **{"retries": 1, "timeout": 60.0, **kw})

    def completions_served(self, at_least: int = 0, wait: float = 5.0) -> int:
        """Chat-completion requests the server answered with 200, from its access log (which may
        trail the response a moment: waits up to `wait` s for `at_least`)."""
        deadline = time.monotonic() + wait
        while True:
            n = self.log.read_text(errors="replace").count('"POST /v1/chat/completions HTTP/1.1" 200')
            if n >= at_least or time.monotonic() > deadline:
                return n
            time.sleep(0.05)


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


@pytest.fixture(scope="session")
def teacher_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeacherServer]:
    """`transformers serve` on a free loopback port, offline (HF_HUB_OFFLINE=1), models loaded
    from local directories on first use and kept (no idle unload); polled for readiness on
    /health and torn down (SIGTERM, then SIGKILL of its process group) after the session."""
    cli = Path(sys.executable).with_name("transformers")
    if not cli.exists():
        pytest.fail(f"the transformers CLI is missing next to {sys.executable}: run `make setup`")
    root = tmp_path_factory.mktemp("teacher")
    models = {
        "random": tiny_model_dir,
        "yes": _train_constant_answer(tiny_model_dir, root / "yes", YES_ANSWER),
        "no": _train_constant_answer(tiny_model_dir, root / "no", NO_ANSWER),
    }
    port = free_port()
    log = root / "serve.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(root / "hf_home"),  # never the user's hub cache
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    cmd = [str(cli), "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    cmd += ["--model-timeout", "-1", "--log-level", "info"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while _get(f"http://127.0.0.1:{port}/health") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                pytest.fail(f"transformers serve did not become ready (exit {proc.poll()}): {' | '.join(tail)}")
            time.sleep(0.2)
        yield TeacherServer(f"http://127.0.0.1:{port}/v1", log, models)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
