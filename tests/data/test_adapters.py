from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from seren.data import load_dataset
from seren.data.adapters import load_interactions, load_items, parse_timestamps
from seren.errors import ConfigError, DataError

from .conftest import run_cli

MAP = ["--map", "user_id=uid", "--map", "item_id=item", "--map", "timestamp=ts", "--map", "rating=score"]
GOOD = "uid,item,ts,score\n1,007,2024-01-01T10:00:00Z,4\n2,b,1700000000,2.5\n2,007,1700000100,5\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_with_mapping_mixed_timestamps_and_text_ids(tmp_path):
    p = _write(tmp_path, "log.csv", GOOD)
    df = load_interactions(p, {"user_id": "uid", "item_id": "item", "timestamp": "ts", "rating": "score"})
    assert list(df.columns[:5]) == ["user_id", "item_id", "event", "rating", "timestamp"]
    assert set(df["item_id"]) == {"007", "b"}  # ids stay text: no 007 -> 7
    assert (df["event"] == "rating").all()
    row = df[df["item_id"] == "b"].iloc[0]
    assert row["timestamp"] == pd.Timestamp(1700000000, unit="s", tz="UTC") and row["rating"] == 2.5
    assert df.loc[df["user_id"] == "1", "timestamp"].iloc[0] == pd.Timestamp("2024-01-01T10:00:00Z")


def test_parquet_with_event_column_and_items(tmp_path):
    inter = pd.DataFrame(
        {
            "user": ["u1", "u1"],
            "item_id": [1, 2],
            "action": ["Click", "skip"],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    inter.to_parquet(tmp_path / "i.parquet")
    df = load_interactions(tmp_path / "i.parquet", {"user_id": "user", "event": "action", "timestamp": "when"})
    assert list(df["event"]) == ["click", "skip"] and df["rating"].isna().all()
    assert str(df["timestamp"].dt.tz) == "UTC"
    items = pd.DataFrame({"id": [1, 2], "name": ["A", "B"], "cat": ["Books/Poetry", None]})
    items.to_parquet(tmp_path / "items.parquet")
    it = load_items(tmp_path / "items.parquet", {"item_id": "id", "title": "name", "category": "cat"})
    assert list(it["category"]) == ["Books/Poetry", "Items/Other"]
    assert it["text"].str.startswith(("A.", "B.")).all()


def test_epoch_milliseconds_are_detected():
    s = parse_timestamps(pd.Series([1_700_000_000_000, 1_700_000_100_000]))
    assert s.iloc[0] == pd.Timestamp(1_700_000_000, unit="s", tz="UTC")


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("missing.csv", "uid,item,score\n1,a,4\n", "missing column 'ts' (for 'timestamp')"),
        ("rating.csv", "uid,item,ts,score\n1,a,2024-01-01,4\n2,b,2024-01-02,great\n", "column 'score' (rating): 1 non-numeric value(s) (e.g. 'great')"),
        ("ts.csv", "uid,item,ts,score\n1,a,2024-01-01,4\n2,b,yesterday,3\n3,c,soon,3\n", "column 'ts' (timestamp): 2 unparsable value(s) (e.g. 'yesterday')"),
        ("empty.csv", "", "file is empty"),
    ],
)  # fmt: skip
def test_cli_bad_inputs_one_line_error(tmp_path, name, text, needle):
    p = _write(tmp_path, name, text)
    out = tmp_path / "out"
    res = run_cli("data", "import-csv", "--interactions", str(p), *MAP, "--out", str(out))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and needle in lines[0] and "Fix:" in lines[0]
    assert "Traceback" not in res.stderr + res.stdout
    assert not out.exists()


def test_cli_import_keeps_prior_good_dataset_on_bad_input(tmp_path):
    good, bad = _write(tmp_path, "good.csv", GOOD), _write(tmp_path, "bad.csv", "uid,item,ts,score\n1,a,never,4\n")
    out = tmp_path / "ds"
    res = run_cli("data", "import-csv", "--interactions", str(good), *MAP, "--out", str(out), "--json")
    assert res.returncode == 0, res.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res = run_cli("data", "import-csv", "--interactions", str(bad), *MAP, "--out", str(out))
    assert res.returncode == 2 and "unparsable" in res.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    ds = load_dataset(out)
    assert len(ds.interactions) == 3 and set(ds.items["item_id"]) == {"007", "b"}


@pytest.mark.parametrize(
    ("text", "kind", "needle"),
    [
        ("uid,item,ts\n1,a,2024-01-01\n", DataError, "no 'event' and no 'rating' column"),
        ("uid,item,ts,score\n", DataError, "header but no rows"),
        ("uid,item,ts,score\n,a,2024-01-01,3\n", DataError, "column 'user_id': 1 empty value(s)"),
        ("uid,item,ts,score\n1,a,2024-01-01,9\n", DataError, "column 'rating'"),
        ('uid,item,ts,score\n1,"a,2024-01-01,3\n', DataError, "cannot parse as csv"),
    ],
)
def test_library_bad_inputs(tmp_path, text, kind, needle):
    p = _write(tmp_path, "x.csv", text)
    with pytest.raises(kind) as exc:
        load_interactions(p, {"user_id": "uid", "item_id": "item", "timestamp": "ts", "rating": "score"})
    assert needle in exc.value.line() and "\n" not in exc.value.line()


def test_bad_mapping_and_suffix(tmp_path):
    with pytest.raises(ConfigError, match="unknown canonical column 'user'"):
        load_interactions(_write(tmp_path, "a.csv", GOOD), {"user": "uid"})
    with pytest.raises(DataError, match="unsupported file type"):
        load_interactions(_write(tmp_path, "a.json", "{}"))
    with pytest.raises(DataError, match="file not found"):
        load_items(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="cannot parse as parquet"):
        load_items(_write(tmp_path, "bad.parquet", "not parquet"))
