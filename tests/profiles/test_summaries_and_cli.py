"""Optional LLM summaries (real OpenAI-compatible server, a dead endpoint, the tiny local model)
and the `seren profiles` CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from seren.data import Dataset
from seren.profiles import build_profiles, count_tokens

from ..labeling.chat_server import ChatServer, free_port
from .handmade import CUT

SUMMARY = "Loves poetry books, has drifted to jazz records lately."


@pytest.fixture
def summary_server():
    srv = ChatServer(lambda prompt: f"Summary: {SUMMARY}\nExtra line ignored.")
    yield srv
    srv.close()


def test_openai_summaries_replace_short_and_long_term_lines(hand: Dataset, tok, summary_server: ChatServer) -> None:
    base = build_profiles(hand, tok, as_of=CUT).set_index("user_id")
    df = build_profiles(hand, tok, as_of=CUT, backend=summary_server.backend()).set_index("user_id")
    m = df.attrs["metrics"]
    assert m["llm_calls"] == 2 and m["llm_failures"] == 0 and m["n_summarised"] == 2
    text = df.loc["alice", "profile_text"]
    assert f"Summary: {SUMMARY}" in text and "Recent intent" not in text and "Long-term interests" not in text
    assert "Engaged subcategories: Books/Poetry 6, Music/Jazz 4" in text  # static part stays deterministic
    assert df["summarised"].all() and not base["summarised"].any()
    # the facts sent to the model are the deterministic short/long-term lines
    assert any("Long-term interests: Books/Poetry, Music/Jazz" in p for p in summary_server.prompts)
    assert (df["profile_tokens"] == count_tokens(tok, df["profile_text"].tolist())).all()


def test_dead_backend_falls_back_counted_and_logged(hand: Dataset, tok, caplog: pytest.LogCaptureFixture) -> None:
    from seren.llm.backends import OpenAIBackend

    dead = OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1", "m", retries=1, timeout=2.0)
    with caplog.at_level(logging.WARNING, logger="seren.profiles.build"):
        df = build_profiles(hand, tok, as_of=CUT, backend=dead)
    base = build_profiles(hand, tok, as_of=CUT)
    pd.testing.assert_series_equal(df["profile_text"], base["profile_text"])
    assert df.attrs["metrics"]["llm_failures"] == df.attrs["metrics"]["llm_calls"] == 2
    assert "2 of 2 backend calls failed" in caplog.text


def test_local_backend_tiny_model_respects_budget(hand: Dataset, tok, tiny_model_dir: Path) -> None:
    from seren.llm.backends import LocalBackend

    df = build_profiles(hand, tok, as_of=CUT, token_budget=48, backend=LocalBackend(tiny_model_dir))
    assert df.attrs["metrics"]["llm_calls"] == 2
    assert df["profile_tokens"].max() <= 48
    assert (df["profile_tokens"] == count_tokens(tok, df["profile_text"].tolist())).all()


def test_cli_build_and_show(small_dataset: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    from seren.cli import app

    out = tmp_path / "profiles.parquet"
    args = ["profiles", "build", "--data", str(small_dataset), "--out", str(out), "--tokenizer", str(tiny_model_dir)]
    res = CliRunner().invoke(app, [*args, "--budget", "64", "--label-frac", "0.5", "--snapshots", "2", "--json"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)
    assert metrics["max_profile_tokens"] <= 64 and metrics["compression_ratio"] > 1 and metrics["n_snapshots"] == 2
    df = pd.read_parquet(out)
    user = df["user_id"].iloc[0]
    shown = CliRunner().invoke(app, ["profiles", "show", "--profiles", str(out), "--user", user])
    assert shown.exit_code == 0 and shown.stdout.startswith(f"# {user} (")
    latest = df[df["user_id"] == user].sort_values("as_of")["profile_text"].iloc[-1]
    assert latest in shown.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "/nonexistent/ds"], "dataset directory /nonexistent/ds does not exist"),
        (["--budget", "2"], "token budget 2 is too small"),
        (["--backend", "gpt"], "unknown backend 'gpt'"),
        (["--as-of", "not-a-date"], "as_of 'not-a-date' is not a timestamp"),
    ],
)
def test_cli_bad_input_one_line(
    small_dataset: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    extra: list[str],
    message: str,
) -> None:
    from seren.cli import main

    out = tmp_path / "p.parquet"
    argv = ["profiles", "build", "--data", str(small_dataset), "--out", str(out), "--tokenizer", str(tiny_model_dir)]
    argv += extra
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code != 0
    assert err.startswith("error: ") and message in err and "Fix:" in err and "\n" not in err
    assert not out.exists()
