from __future__ import annotations

import json

import pandas as pd

from seren.data import load_dataset

from .conftest import run_cli


def test_generate_then_validate_json(tmp_path):
    out = tmp_path / "syn"
    args = ["data", "generate", "--users", "50", "--items", "100", "--seed", "9", "--out", str(out), "--json"]
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["tables"]["users"] == 50 and info["tables"]["items"] == 100
    ds = load_dataset(out)
    assert ds.meta["seed"] == 9 and len(ds.interactions) == info["tables"]["interactions"]
    res = run_cli("data", "validate", str(out), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["valid"] is True


def test_validate_reports_corruption_in_one_line(tmp_path):
    from seren.data import save_dataset
    from seren.data.synthetic import SyntheticConfig, generate

    out = tmp_path / "syn"
    save_dataset(generate(SyntheticConfig(n_users=20, n_items=60, seed=2)), out)
    inter = pd.read_parquet(out / "interactions.parquet")
    inter.loc[:2, "event"] = "teleport"
    inter.to_parquet(out / "interactions.parquet", index=False)
    res = run_cli("data", "validate", str(out))
    assert res.returncode == 2
    line = res.stderr.strip()
    assert "\n" not in line and "column 'event': 3 row(s)" in line and "teleport" in line
    assert "Traceback" not in res.stderr


def test_generate_rejects_bad_config():
    res = run_cli("data", "generate", "--users", "10", "--items", "5", "--out", "unused")
    assert res.returncode == 2 and res.stderr.strip().startswith("error: invalid synthetic config: n_items")


def test_parse_mapping_prefixes():
    import pytest

    from seren.commands.data import parse_mapping
    from seren.errors import ConfigError

    inter, items = parse_mapping(["item_id=sku", "items.title=name", "interactions.user_id=customer"])
    assert inter == {"item_id": "sku", "user_id": "customer"}
    assert items == {"item_id": "sku", "title": "name"}
    for bad in ["title", "users.user_id=x", "items.user_id=x", "colour=x"]:
        with pytest.raises(ConfigError):
            parse_mapping([bad])
