"""Issue 16 (7): Triton dying mid-request. The stand-in below is a real local HTTP server that speaks
enough of Triton's HTTP/REST protocol for the client (ready, metadata, config) and closes the
connection without an answer on inference requests (as a killed tritonserver does); tests that use it
say `closing_http_stand_in` in their names. The crash between the profile and candidate pushes is
injected into the real nearline run against the real tritonserver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seren.errors import ServiceError
from seren.nearline import NearlineConfig, WatermarkStore, nearline_dir, open_store, run_loop, run_nearline
from serving.client import SerenClient

pytestmark = pytest.mark.integration


class ClosingTriton:
    """Answers health/metadata/config for any model; closes the first `close_infer` inference
    requests without a response (all of them when None), answers the rest with SCORE = 0.25."""

    def __init__(self, close_infer: int | None = None) -> None:
        self.close_infer = close_infer
        self.infer_requests = 0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _json(self, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                parts = self.path.split("?")[0].strip("/").split("/")  # v2/models/<name>[/ready|/config]
                if parts[-1] == "ready":
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif parts[-1] == "config":
                    self._json({"name": parts[2], "max_batch_size": 8})
                else:
                    tensors = [
                        {"name": n, "datatype": "BYTES", "shape": [-1, -1]} for n in ("PROFILE_TEXT", "ITEM_TEXT")
                    ]
                    out = [{"name": "SCORE", "datatype": "FP32", "shape": [-1, -1]}]
                    self._json({"name": parts[2], "versions": ["1"], "inputs": tensors, "outputs": out})

            def do_POST(self) -> None:  # noqa: N802
                header_len = int(self.headers.get("Inference-Header-Content-Length") or 0)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stand_in.infer_requests += 1
                if stand_in.close_infer is None or stand_in.close_infer > 0:
                    if stand_in.close_infer:
                        stand_in.close_infer -= 1
                    self.close_connection = True  # dies mid-request: no status line, connection closed
                    return
                request = json.loads(body[:header_len] if header_len else body)
                shape = request["inputs"][1]["shape"]
                n = int(np.prod(shape))
                out = {"name": "SCORE", "datatype": "FP32", "shape": shape, "data": [0.25] * n}
                self._json({"model_name": self.path.split("/")[3], "outputs": [out]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def closing_triton() -> Iterator[ClosingTriton]:
    srv = ClosingTriton()
    yield srv
    srv.close()


def test_connection_closed_mid_request_is_retried_closing_http_stand_in() -> None:
    srv = ClosingTriton(close_infer=1)
    try:
        with SerenClient(srv.url, retries=2, backoff=0.01) as client:
            client.check_model()
            got = client.score("likes jazz", ["a record", "a book"])
        np.testing.assert_allclose(got, [0.25, 0.25])
        assert srv.infer_requests == 2  # the closed one, then the retry that succeeded
    finally:
        srv.close()


def test_connection_closed_on_every_try_is_one_line_closing_http_stand_in(closing_triton: ClosingTriton) -> None:
    with SerenClient(closing_triton.url, retries=2, backoff=0.01) as client:
        with pytest.raises(ServiceError) as err:
            client.score("likes jazz", ["a record"])
    line = err.value.line()
    assert "\n" not in line and "after 3 attempts" in line and "HTTPConnectionClosed" in line, line
    assert closing_triton.infer_requests == 3


def _cfg(data: Path, url: str, exploration_dir: Path, model: Path, feast_dir: Path, **kw) -> NearlineConfig:
    return NearlineConfig(
        dataset_dir=str(data),
        triton_url=url,
        exploration_dir=str(exploration_dir),
        model=str(model),
        token_budget=48,
        k_main=4,
        k_explore=3,
        n_novel=2,
        top_n=3,
        threshold=0.0,
        feast_target="local",
        feast_data_dir=str(feast_dir),
        judgments_dir=str(feast_dir.parent / "judgments"),
        **kw,
    )


def test_every_loop_survives_triton_dying_mid_request_closing_http_stand_in(
    closing_triton: ClosingTriton, few_users: Path, exploration_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Each tick's scoring hits a closed connection: retried, then one error line per tick; the loop
    runs every tick and the watermark never moves (the next tick redoes the window)."""
    feast = tmp_path / "features"
    cfg = _cfg(few_users, closing_triton.url, exploration_dir, tiny_model_dir, feast, retries=1)
    errors: list[ServiceError] = []
    runs, failed = run_loop(cfg, every_s=0.01, max_runs=2, on_error=errors.append, sleep=lambda s: None)
    assert (runs, failed) == (2, 2) and len(errors) == 2
    assert all("\n" not in e.line() and "HTTPConnectionClosed" in e.line() for e in errors), errors
    assert closing_triton.infer_requests >= 4  # two ticks x (first try + one retry)
    assert WatermarkStore(nearline_dir(feast)).read() is None


def test_crash_between_profile_and_candidate_push_is_marked_and_repaired(
    triton, few_users: Path, exploration_dir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """A run killed after the profile push and before the candidate push: the reader sees the pair as
    torn (profile and candidates carry different window ends), never as one unit; the re-run of the
    same window (watermark kept) makes every pair consistent again."""
    import feature_repo.store as fs
    from seren.data import load_dataset, save_dataset
    from seren.nearline.unit import read_units

    feast = tmp_path / "features"
    data = tmp_path / "data"
    ds = load_dataset(few_users)
    cut = ds.interactions["timestamp"].quantile(0.6)
    newer = ds.interactions[ds.interactions["timestamp"] > cut]
    ds.interactions = ds.interactions[ds.interactions["timestamp"] <= cut]
    save_dataset(ds, data)
    cfg = _cfg(data, triton.http_url, exploration_dir, tiny_model_dir, feast)
    first = run_nearline(cfg)
    store = open_store("local", feast)
    changed = sorted(newer["user_id"].astype(str).unique())
    before = read_units(store, changed)
    users = before.loc[before["consistent"], "user_id"].tolist()  # cached by run 1, changed for run 2
    assert first["users_refreshed"] > 0 and users

    ds.interactions = pd.concat([ds.interactions, newer], ignore_index=True)
    save_dataset(ds, data)
    real_push = fs.push

    def crash_on_candidates(store_, source, df, *a, **kw):  # noqa: ANN001, ANN202
        if source == "user_candidates_push":
            raise ServiceError("simulated crash between the two pushes", "re-run")
        return real_push(store_, source, df, *a, **kw)

    monkeypatch.setattr(fs, "push", crash_on_candidates)
    with pytest.raises(ServiceError, match="simulated crash"):
        run_nearline(cfg)
    monkeypatch.setattr(fs, "push", real_push)
    torn = read_units(store, users)
    end1 = pd.Timestamp(first["window_end"])
    assert (torn["profile_ts"] > end1).all() and (torn["candidates_ts"] == end1).all()  # new profile, old candidates
    assert not torn["consistent"].any()  # reported torn, never as one unit
    assert WatermarkStore(nearline_dir(feast)).watermark() == pd.Timestamp(first["watermark_after"])

    again = run_nearline(cfg)
    units = read_units(store, users)
    assert units["consistent"].all() and (units["profile_ts"] == pd.Timestamp(again["window_end"])).all()
